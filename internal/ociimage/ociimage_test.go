package ociimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64"}
)

// meta is the metadata of every test image.
func meta() Metadata {
	return Metadata{
		Title:       "pg2kinesis",
		Version:     "v0.3.0-12-gabc1234",
		Revision:    "abc1234def5678abc1234def5678abc1234def56",
		Source:      "https://github.com/pg2kinesis/pg2kinesis",
		Licenses:    "MIT",
		Created:     time.Date(2026, 12, 3, 14, 42, 10, 0, time.UTC),
		MetricsPort: 9187,
		CACerts:     []byte("-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n"),
	}
}

// fakeBinary stands for the executable: bytes that differ by platform.
func fakeBinary(p v1.Platform) []byte {
	return []byte("\x7fELF fake pg2kinesis for " + p.String() + "\n")
}

// layerFiles reads the single layer of img: each entry's header and bytes.
func layerFiles(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want one", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	headers, data := map[string]*tar.Header{}, map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return headers, data
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		headers[h.Name], data[h.Name] = h, b
	}
}

// checkImage checks what Image promises of an image for p built with m.
func checkImage(t *testing.T, img v1.Image, p v1.Platform, m Metadata) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Platform(); got == nil || !got.Equals(p) {
		t.Errorf("platform %v, want %v", got, p)
	}
	if !cf.Created.Time.Equal(m.Created) {
		t.Errorf("created %v, want %v", cf.Created.Time, m.Created)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", c.User)
	}
	if len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/usr/local/bin/pg2kinesis" {
		t.Errorf("entrypoint %q", c.Entrypoint)
	}
	if _, ok := c.ExposedPorts["9187/tcp"]; !ok || len(c.ExposedPorts) != 1 {
		t.Errorf("exposed ports %v, want 9187/tcp", c.ExposedPorts)
	}
	if !strings.Contains(strings.Join(c.Env, "\n"), "PG2KINESIS_METRICS_ADDR=:9187") {
		t.Errorf("env %q lacks the metrics address on every interface", c.Env)
	}
	for k, want := range map[string]string{
		"title":    m.Title,
		"version":  m.Version,
		"revision": m.Revision,
		"source":   m.Source,
		"licenses": m.Licenses,
		"created":  "2026-12-03T14:42:10Z",
	} {
		if got := c.Labels["org.opencontainers.image."+k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}

	headers, data := layerFiles(t, img)
	bin := headers["usr/local/bin/pg2kinesis"]
	if bin == nil || !bytes.Equal(data[bin.Name], fakeBinary(p)) {
		t.Fatalf("layer's usr/local/bin/pg2kinesis differs from the binary given")
	}
	if bin.Mode != 0o755 || bin.Uid != 0 {
		t.Errorf("binary mode %o uid %d, want 755 owned by root", bin.Mode, bin.Uid)
	}
	if h := headers["tmp/"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("tmp/ missing or not world-writable and sticky: %+v", h)
	}
	if h := headers["home/nonroot/"]; h == nil || h.Uid != 65532 {
		t.Errorf("home/nonroot/ missing or not the user's: %+v", h)
	}
	if !bytes.Equal(data["etc/ssl/certs/ca-certificates.crt"], m.CACerts) {
		t.Errorf("CA bundle differs from the one given")
	}
	for name, h := range headers {
		if !h.ModTime.Equal(m.Created) {
			t.Errorf("%s: time %v, want the created time", name, h.ModTime)
		}
	}
}

// Each platform's image, written as a docker-archive and read back, has the
// binary, the user, the entrypoint, the port and the labels.
func TestImageTarball(t *testing.T) {
	for _, p := range []v1.Platform{amd64, arm64} {
		t.Run(p.String(), func(t *testing.T) {
			img, err := Image(p, fakeBinary(p), meta())
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "image.tar")
			if err := WriteImage(path, "pg2kinesis:"+meta().Version, img); err != nil {
				t.Fatal(err)
			}
			back, err := tarball.ImageFromPath(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, back, p, meta())
			// A docker-archive keeps the config and the layers, not the
			// OCI manifest (docker load makes its own): compare the config.
			want, _ := img.ConfigName()
			if got, err := back.ConfigName(); err != nil || got != want {
				t.Errorf("config digest read back %v, %v; want %v", got, err, want)
			}
		})
	}
}

// The multi-arch OCI layout names the index by the version, and the index
// holds both platforms' images.
func TestImageIndexLayout(t *testing.T) {
	var images []v1.Image
	for _, p := range []v1.Platform{amd64, arm64} {
		img, err := Image(p, fakeBinary(p), meta())
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, img)
	}
	idx, err := Index(images...)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "oci.tar")
	if err := WriteIndex(path, meta().Version, idx, meta().Created); err != nil {
		t.Fatal(err)
	}
	dir := untar(t, path)
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 || tm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != meta().Version ||
		tm.Manifests[0].MediaType != types.OCIImageIndex {
		t.Fatalf("index.json %+v: want one image index named %q", tm.Manifests, meta().Version)
	}
	multi, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	mm, err := multi.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want := []v1.Platform{amd64, arm64}
	if len(mm.Manifests) != len(want) {
		t.Fatalf("index has %d manifests, want %d", len(mm.Manifests), len(want))
	}
	for i, d := range mm.Manifests {
		if d.Platform == nil || !d.Platform.Equals(want[i]) {
			t.Errorf("manifest %d: platform %v, want %v", i, d.Platform, want[i])
			continue
		}
		img, err := multi.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, img, want[i], meta())
		// The layout keeps the manifests as written: OCI's media types.
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if d.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON ||
			len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
			t.Errorf("manifest %d: media types %q, config %q, layers %+v; want OCI's", i, d.MediaType, m.Config.MediaType, m.Layers)
		}
	}
}

// The same binaries and metadata give the same bytes: a rebuild of a
// commit is checkable against its published digest.
func TestImageReproducible(t *testing.T) {
	write := func() []byte {
		img, err := Image(amd64, fakeBinary(amd64), meta())
		if err != nil {
			t.Fatal(err)
		}
		idx, err := Index(img)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "oci.tar")
		if err := WriteIndex(path, "v1", idx, meta().Created); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if !bytes.Equal(write(), write()) {
		t.Error("two builds of the same inputs differ")
	}
}

// Inputs that cannot make a usable image are refused with what is wrong.
func TestImageErrors(t *testing.T) {
	img, err := Image(amd64, fakeBinary(amd64), meta())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"empty binary", func() error { _, err := Image(amd64, nil, meta()); return err }, "binary is empty"},
		{"no architecture", func() error { _, err := Image(v1.Platform{OS: "linux"}, []byte("x"), meta()); return err }, "want an OS and an architecture"},
		{"no images", func() error { _, err := Index(); return err }, "no images"},
		{"one platform twice", func() error { _, err := Index(img, img); return err }, "two images for linux/amd64"},
		{"bad tag", func() error { return WriteImage(filepath.Join(t.TempDir(), "x.tar"), "pg2kinesis:bad tag", img) }, "tag"},
		{"bad reference name", func() error {
			return WriteIndex(filepath.Join(t.TempDir(), "x.tar"), "bad/name", mustIndex(t, img), meta().Created)
		}, "not a valid tag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func mustIndex(t *testing.T, images ...v1.Image) v1.ImageIndex {
	t.Helper()
	idx, err := Index(images...)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// untar extracts the tar at path into a new directory and returns it.
func untar(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(target, dir+string(filepath.Separator)) {
			t.Fatalf("tar entry %q leaves the directory", h.Name)
		}
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
