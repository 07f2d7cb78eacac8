package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"strings"
	"time"
)

// passwd and group name the image's two users. Nothing in pg2kinesis needs
// them, but os/user (libpq's home directory lookup) and tools such as ps
// and id print names instead of bare numbers with them.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:" + homeDir + ":/sbin/nologin\n"
	group = "root:x:0:\nnonroot:x:65532:\n"
)

// entry is one file or directory of the layer.
type entry struct {
	name string // absolute path
	mode int64  // permission bits, with sticky
	uid  int
	dir  bool
	data []byte
}

// rootFS returns the layer's uncompressed tar: the binary, the users, the
// CA bundle if given, a writable /tmp (the default --spool-dir of
// pgoutput's streamed transactions) and the user's home. Parents come
// before their children, and every entry has the time created, so the
// bytes depend on the inputs only.
func rootFS(binary, caCerts []byte, created time.Time) ([]byte, error) {
	entries := []entry{
		{name: "/etc", mode: 0o755, dir: true},
		{name: "/etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "/etc/group", mode: 0o644, data: []byte(group)},
	}
	if len(caCerts) > 0 {
		entries = append(entries,
			entry{name: "/etc/ssl", mode: 0o755, dir: true},
			entry{name: "/etc/ssl/certs", mode: 0o755, dir: true},
			entry{name: CACertPath, mode: 0o644, data: caCerts},
		)
	}
	entries = append(entries,
		entry{name: "/home", mode: 0o755, dir: true},
		entry{name: homeDir, mode: 0o700, uid: uid, dir: true},
		entry{name: "/tmp", mode: 0o1777, dir: true},
		entry{name: "/usr", mode: 0o755, dir: true},
		entry{name: "/usr/local", mode: 0o755, dir: true},
		entry{name: "/usr/local/bin", mode: 0o755, dir: true},
		// Root's, not the user's: the daemon cannot replace itself.
		entry{name: BinaryPath, mode: 0o755, data: binary},
	)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		// Layer paths are relative, as docker and buildkit write them.
		h := &tar.Header{
			Name:    strings.TrimPrefix(e.name, "/"),
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.uid,
			ModTime: created,
			Format:  tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}
