package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/pg2kinesis/pg2kinesis/internal/ociimage"
)

// The release then the image, as make release and make image build them
// (scripts/release.sh binaries, then image; for this machine's
// architecture only): the image read back from its
// docker-archive runs the release binary, byte for byte, as a non-root
// user, with the stamped version in its labels.
func TestReleaseImage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("make image packs linux binaries")
	}
	if testing.Short() {
		t.Skip("builds the release binary")
	}
	const version, commit = "v9.9.9-image", "89abcdef0123456789abcdef0123456789abcdef"
	dist := t.TempDir()
	ca := filepath.Join(dist, "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	platform := "linux/" + runtime.GOARCH
	for _, step := range []string{"binaries", "image"} {
		cmd := exec.Command("../../scripts/release.sh", step)
		cmd.Env = append(os.Environ(), "DIST="+dist, "PLATFORMS="+platform, "IMAGE_PLATFORMS="+platform,
			"VERSION="+version, "COMMIT="+commit, "CA_CERTS="+ca)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("release.sh %s: %v\n%s", step, err, out)
		}
	}
	bin := filepath.Join(dist, "pg2kinesis-"+version+"-linux-"+runtime.GOARCH)
	want, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(bin+".image.tar", nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User == "" || c.User == "0" || strings.HasPrefix(c.User, "0:") || c.User == "root" {
		t.Errorf("runs as %q, want a non-root user", c.User)
	}
	if len(c.Entrypoint) != 1 || c.Entrypoint[0] != ociimage.BinaryPath {
		t.Errorf("entrypoint %q, want [%s]", c.Entrypoint, ociimage.BinaryPath)
	}
	if got := c.Labels["org.opencontainers.image.version"]; got != version {
		t.Errorf("version label %q, want %q", got, version)
	}
	if got := c.Labels["org.opencontainers.image.revision"]; got != commit {
		t.Errorf("revision label %q, want %q", got, commit)
	}
	if cf.Architecture != runtime.GOARCH || cf.OS != "linux" {
		t.Errorf("platform %s/%s, want %s", cf.OS, cf.Architecture, platform)
	}
	got := fileInImage(t, mutate.Extract(img), ociimage.BinaryPath)
	if !bytes.Equal(got, want) {
		t.Errorf("the image's %s (%d bytes) differs from %s (%d bytes)", ociimage.BinaryPath, len(got), bin, len(want))
	}
	if _, err := os.Stat(filepath.Join(dist, "pg2kinesis-"+version+"-oci.tar")); err != nil {
		t.Errorf("no multi-arch layout: %v", err)
	}
}

// fileInImage reads one file of an image's flattened file system.
func fileInImage(t *testing.T, rc io.ReadCloser, path string) []byte {
	t.Helper()
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("the image has no %s", path)
		}
		if err != nil {
			t.Fatal(err)
		}
		if "/"+filepath.Clean(h.Name) == path || filepath.Clean(h.Name) == path {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}
