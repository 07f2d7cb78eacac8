// Package ociimage builds pg2kinesis' container image from a static binary,
// without Docker and without pulling a base image: one layer on an empty
// base, holding the binary and the few files a non-root daemon needs. It
// writes one docker-archive per architecture (docker load, podman load) and
// a multi-architecture OCI image layout as a tar (skopeo's oci-archive:).
//
// The same binaries and Metadata give the same digests: every time in the
// image is Metadata.Created (the commit time), not the build time.
package ociimage

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Where things are in the image, and who runs it.
const (
	BinaryPath = "/usr/local/bin/pg2kinesis"
	CACertPath = "/etc/ssl/certs/ca-certificates.crt"
	// User is distroless' "nonroot": an unprivileged user that no host
	// account is likely to share, given as numbers so that Kubernetes'
	// runAsNonRoot can check it without reading /etc/passwd.
	User    = "65532:65532"
	uid     = 65532
	homeDir = "/home/nonroot"
)

// Metadata describes the image. Its fields become the OCI labels
// org.opencontainers.image.* (an empty one is left out) and its settings.
type Metadata struct {
	Title    string    // title label, e.g. "pg2kinesis"
	Version  string    // version label, e.g. git describe's "v0.3.0-12-gabc1234"
	Revision string    // revision label: the full commit hash
	Source   string    // source label: the repository's URL
	Licenses string    // licenses label: an SPDX expression
	Created  time.Time // created label, and the time of every file and history entry
	// MetricsPort is the TCP port the image exposes, and the one the
	// daemon listens on in it: PG2KINESIS_METRICS_ADDR is set to
	// ":<port>", since the flag's default, 127.0.0.1, cannot be scraped
	// from outside the container. 0 sets neither.
	MetricsPort int
	// CACerts is the PEM bundle placed at CACertPath, where Go's
	// crypto/x509 looks on Linux: without one the daemon cannot verify
	// Kinesis' (or an RDS server's) TLS certificate. Empty leaves it out.
	CACerts []byte
}

// Labels returns the OCI labels of m, without the empty ones.
func (m Metadata) Labels() map[string]string {
	labels := map[string]string{}
	for k, v := range map[string]string{
		"title":    m.Title,
		"version":  m.Version,
		"revision": m.Revision,
		"source":   m.Source,
		"licenses": m.Licenses,
	} {
		if v != "" {
			labels["org.opencontainers.image."+k] = v
		}
	}
	if !m.Created.IsZero() {
		labels["org.opencontainers.image.created"] = m.Created.UTC().Format(time.RFC3339)
	}
	return labels
}

// Image builds the image of binary, the pg2kinesis executable for platform.
// Its media types are OCI's throughout.
func Image(platform v1.Platform, binary []byte, m Metadata) (v1.Image, error) {
	if platform.OS == "" || platform.Architecture == "" {
		return nil, fmt.Errorf("image for platform %q: want an OS and an architecture", platform.String())
	}
	if len(binary) == 0 {
		return nil, fmt.Errorf("image for %s: the binary is empty", platform.String())
	}
	created := m.Created.UTC().Truncate(time.Second)
	rootfs, err := rootFS(binary, m.CACerts, created)
	if err != nil {
		return nil, fmt.Errorf("image for %s: %w", platform.String(), err)
	}
	layer, err := tarball.LayerFromOpener(
		func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(rootfs)), nil },
		tarball.WithMediaType(types.OCILayer),
		tarball.WithCompressionLevel(gzip.BestCompression),
		// The layer is read for its digest, then again for each write:
		// compress it once.
		tarball.WithCompressedCaching,
	)
	if err != nil {
		return nil, fmt.Errorf("image for %s: layer: %w", platform.String(), err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "pg2kinesis tools/mkimage: " + BinaryPath + " on an empty base",
			Comment:   m.Version,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("image for %s: append layer: %w", platform.String(), err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image for %s: config: %w", platform.String(), err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant, cf.OSVersion = platform.OS, platform.Architecture, platform.Variant, platform.OSVersion
	cf.Created = v1.Time{Time: created}
	cf.Config = config(m)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image for %s: set config: %w", platform.String(), err)
	}
	return img, nil
}

// config is the run configuration: what docker run and Kubernetes start.
func config(m Metadata) v1.Config {
	c := v1.Config{
		Entrypoint: []string{BinaryPath},
		User:       User,
		WorkingDir: "/",
		Env: []string{
			"PATH=/usr/local/bin:/usr/bin:/bin",
			// libpq's ~/.pgpass and the AWS SDK's ~/.aws are found here.
			"HOME=" + homeDir,
		},
		Labels: m.Labels(),
	}
	if m.MetricsPort != 0 {
		port := strconv.Itoa(m.MetricsPort)
		c.ExposedPorts = map[string]struct{}{port + "/tcp": {}}
		c.Env = append(c.Env, "PG2KINESIS_METRICS_ADDR=:"+port)
	}
	return c
}

// Index returns the multi-architecture index of images, one entry per
// image with the platform its config names, in the order given.
func Index(images ...v1.Image) (v1.ImageIndex, error) {
	if len(images) == 0 {
		return nil, fmt.Errorf("index: no images")
	}
	adds := make([]mutate.IndexAddendum, 0, len(images))
	seen := map[string]bool{}
	for _, img := range images {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("index: config: %w", err)
		}
		p := cf.Platform()
		if p == nil {
			return nil, fmt.Errorf("index: an image names no platform")
		}
		if seen[p.String()] {
			return nil, fmt.Errorf("index: two images for %s", p.String())
		}
		seen[p.String()] = true
		mt, err := img.MediaType()
		if err != nil {
			return nil, fmt.Errorf("index: %s media type: %w", p.String(), err)
		}
		adds = append(adds, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{MediaType: mt, Platform: p},
		})
	}
	return mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex), nil
}
