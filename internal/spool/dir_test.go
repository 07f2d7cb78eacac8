package spool

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestCheckDir(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dir     func(t *testing.T) string // the --spool-dir to check
		wantErr bool
		root    bool // the case means nothing to root, who writes anywhere
	}{
		{"existing", func(t *testing.T) string { return t.TempDir() }, false, false},
		{"missing, created", func(t *testing.T) string { return filepath.Join(t.TempDir(), "a", "b") }, false, false},
		{"a file in its place", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, true, false},
		{"parent is a file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(p, "spool")
		}, true, false},
		// As root (CI), the chmod cases below skip; procfs refuses new
		// files to root too, so that an existing directory that cannot
		// be written is still tested there.
		{"existing, no one may write (procfs)", func(t *testing.T) string { return procfs(t) }, true, false},
		{"missing under procfs", func(t *testing.T) string { return filepath.Join(procfs(t), "spool") }, true, false},
		{"read-only", func(t *testing.T) string {
			p := t.TempDir()
			if err := os.Chmod(p, 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(p, 0o700) })
			return p
		}, true, true},
		{"missing under a read-only parent", func(t *testing.T) string {
			p := t.TempDir()
			if err := os.Chmod(p, 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(p, 0o700) })
			return filepath.Join(p, "spool")
		}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() == 0 {
				t.Skip("running as root, which writes to read-only directories: the permission check cannot fail here")
			}
			dir := tc.dir(t)
			err := CheckDir(dir)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("CheckDir(%s) = %v, want nil", dir, err)
				}
				if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 && tc.name != "existing" {
					t.Fatalf("%s after CheckDir: %v, %v; want a 0700 directory", dir, fi, err)
				}
				if left, _ := os.ReadDir(dir); len(left) != 0 {
					t.Fatalf("CheckDir left %d files in %s", len(left), dir)
				}
				return
			}
			var de *DirError
			if !errors.As(err, &de) || de.Dir != dir {
				t.Fatalf("CheckDir(%s) = %v, want a DirError naming it", dir, err)
			}
			for _, w := range []string{dir, "--spool-dir", "writ"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// procfs is a directory in which no one, not even root, creates files.
func procfs(t *testing.T) string {
	if runtime.GOOS != "linux" {
		t.Skip("procfs is Linux's")
	}
	return "/proc"
}
