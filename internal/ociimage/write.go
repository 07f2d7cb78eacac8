package ociimage

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// refNameAnnotation names an image in an OCI layout's index.json: skopeo's
// oci-archive:FILE:NAME and podman load read it.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// WriteImage writes img to path as a docker-archive (docker save's format:
// docker load, podman load, skopeo's docker-archive:), tagged tag, e.g.
// "pg2kinesis:v0.3.0". The file is replaced only once it is complete.
func WriteImage(path, tag string, img v1.Image) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("write image %s: tag: %w", path, err)
	}
	return writeAtomically(path, func(w io.Writer) error {
		return tarball.Write(ref, img, w)
	})
}

// WriteIndex writes idx to path as a tar of an OCI image layout whose
// index.json holds one entry, idx itself, named refName (e.g. the version):
// a multi-architecture image that skopeo copy oci-archive:path:refName and
// podman load take whole. The file is replaced only once it is complete.
func WriteIndex(path, refName string, idx v1.ImageIndex, mtime time.Time) error {
	if _, err := name.NewTag("pg2kinesis:" + refName); err != nil {
		return fmt.Errorf("write index %s: reference name %q is not a valid tag: %w", path, refName, err)
	}
	dir, err := os.MkdirTemp("", "pg2kinesis-oci-")
	if err != nil {
		return fmt.Errorf("write index %s: %w", path, err)
	}
	defer os.RemoveAll(dir)
	top := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
		Add:        idx,
		Descriptor: v1.Descriptor{Annotations: map[string]string{refNameAnnotation: refName}},
	})
	if _, err := layout.Write(dir, top); err != nil {
		return fmt.Errorf("write index %s: layout: %w", path, err)
	}
	return writeAtomically(path, func(w io.Writer) error { return tarDir(w, dir, mtime) })
}

// tarDir writes the files under dir to w, with paths relative to dir,
// in lexical order and with mtime as every time, so that the same layout
// gives the same bytes.
func tarDir(w io.Writer, dir string, mtime time.Time) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Mode: 0o644, Typeflag: tar.TypeReg}
		if d.IsDir() {
			h.Name, h.Mode, h.Typeflag = h.Name+"/", 0o755, tar.TypeDir
			return tw.WriteHeader(h)
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		h.Size = st.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("tar %s: %w", dir, err)
	}
	return tw.Close()
}

// writeAtomically writes path through a temporary file beside it, renamed
// over path once write succeeded: a failed run leaves no truncated image
// that a later load would take for a good one.
func writeAtomically(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // fails harmlessly after the rename
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
