// Command mkimage writes pg2kinesis' container images from release
// binaries, without Docker (make image runs it through scripts/release.sh):
//
//	go run ./tools/mkimage --version v0.3.0 --revision <hash> --created <unix seconds> \
//	  --binary linux/amd64=dist/pg2kinesis-v0.3.0-linux-amd64 --image-out linux/amd64=dist/….image.tar \
//	  --binary linux/arm64=… --index-out dist/pg2kinesis-v0.3.0-oci.tar
//
// It is a tool of the build, not of the daemon: cmd/pg2kinesis does not
// import internal/ociimage, so the binary carries none of it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pg2kinesis/pg2kinesis/internal/ociimage"
)

// metricsPort is the port of pg2kinesis' default --metrics-addr
// (127.0.0.1:9187; internal/config), which the image exposes on every
// interface.
const metricsPort = 9187

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// platformFiles is a repeatable PLATFORM=FILE flag, in the order given.
type platformFiles struct {
	platforms []v1.Platform
	files     []string
}

func (p *platformFiles) String() string { return strings.Join(p.files, ",") }

func (p *platformFiles) Set(s string) error {
	plat, file, ok := strings.Cut(s, "=")
	if !ok || file == "" {
		return fmt.Errorf("want PLATFORM=FILE, such as linux/amd64=dist/pg2kinesis-linux-amd64, not %q", s)
	}
	pl, err := v1.ParsePlatform(plat)
	if err != nil {
		return fmt.Errorf("platform %q: %w", plat, err)
	}
	p.platforms, p.files = append(p.platforms, *pl), append(p.files, file)
	return nil
}

func (p *platformFiles) file(pl v1.Platform) string {
	for i := range p.platforms {
		if p.platforms[i].Equals(pl) {
			return p.files[i]
		}
	}
	return ""
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		binaries, imageOuts platformFiles
		m                   = ociimage.Metadata{MetricsPort: metricsPort}
		created, caCerts    string
		indexOut            string
	)
	fs.Var(&binaries, "binary", "PLATFORM=FILE: the static pg2kinesis binary for a platform (repeat for each)")
	fs.Var(&imageOuts, "image-out", "PLATFORM=FILE: write that platform's image as a docker-archive to FILE (repeatable)")
	fs.StringVar(&indexOut, "index-out", "", "write the multi-arch OCI layout of every platform's image, as a tar, to `FILE`")
	fs.StringVar(&m.Title, "title", "pg2kinesis", "org.opencontainers.image.title")
	fs.StringVar(&m.Version, "version", "", "org.opencontainers.image.version, and the tag and reference name (required)")
	fs.StringVar(&m.Revision, "revision", "", "org.opencontainers.image.revision: the commit hash")
	fs.StringVar(&m.Source, "source", "", "org.opencontainers.image.source: the repository URL")
	fs.StringVar(&m.Licenses, "licenses", "", "org.opencontainers.image.licenses: an SPDX expression; empty leaves it out")
	fs.StringVar(&created, "created", "", "the commit `time`, as Unix seconds or RFC 3339: the created label and every time in the image (required)")
	fs.StringVar(&caCerts, "ca-certs", "", "PEM `FILE` of CA certificates to put at "+ociimage.CACertPath+" (Kinesis and RDS need one)")
	fs.IntVar(&m.MetricsPort, "metrics-port", metricsPort, "TCP port exposed and listened on for /metrics; 0 for none")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 || m.Version == "" || created == "" || len(binaries.files) == 0 || (indexOut == "" && len(imageOuts.files) == 0) {
		fs.Usage()
		return fmt.Errorf("%w: --version, --created, a --binary and an --image-out or --index-out are required", errUsage)
	}
	var err error
	if m.Created, err = parseTime(created); err != nil {
		return fmt.Errorf("%w: --created: %v", errUsage, err)
	}
	if caCerts != "" {
		if m.CACerts, err = os.ReadFile(caCerts); err != nil {
			return fmt.Errorf("--ca-certs: %w", err)
		}
	}
	for _, pl := range imageOuts.platforms {
		if binaries.file(pl) == "" {
			return fmt.Errorf("%w: --image-out %s without a --binary for it", errUsage, pl.String())
		}
	}

	var images []v1.Image
	for i, pl := range binaries.platforms {
		bin, err := os.ReadFile(binaries.files[i])
		if err != nil {
			return fmt.Errorf("--binary %s: %w", pl.String(), err)
		}
		img, err := ociimage.Image(pl, bin, m)
		if err != nil {
			return err
		}
		images = append(images, img)
		if out := imageOuts.file(pl); out != "" {
			if err := ociimage.WriteImage(out, "pg2kinesis:"+m.Version, img); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "wrote %s (%s)\n", out, pl.String())
		}
	}
	if indexOut != "" {
		idx, err := ociimage.Index(images...)
		if err != nil {
			return err
		}
		if err := ociimage.WriteIndex(indexOut, m.Version, idx, m.Created); err != nil {
			return err
		}
		d, err := idx.Digest()
		if err != nil {
			return fmt.Errorf("index digest: %w", err)
		}
		fmt.Fprintf(stderr, "wrote %s (index %s)\n", indexOut, d)
	}
	return nil
}

// parseTime reads Unix seconds (git log --format=%ct, SOURCE_DATE_EPOCH)
// or an RFC 3339 time.
func parseTime(s string) (time.Time, error) {
	if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(sec, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want Unix seconds or RFC 3339, not %q", s)
	}
	return t.UTC(), nil
}
