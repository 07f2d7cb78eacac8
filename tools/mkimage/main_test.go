package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 12, 3, 14, 42, 10, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1796308930", want, true},
		{"2026-12-03T14:42:10Z", want, true},
		{"2026-12-03T15:42:10+01:00", want, true},
		{"yesterday", time.Time{}, false},
	} {
		got, err := parseTime(tc.in)
		if (err == nil) != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// Bad command lines are usage errors that say what is wrong; a good one
// writes the image it was asked for.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "pg2kinesis")
	if err := os.WriteFile(bin, []byte("fake binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "image.tar")
	ok := []string{"--version", "v1.0.0", "--created", "1796308930", "--binary", "linux/amd64=" + bin}
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
		want  string // in the error; "" for success
	}{
		{"no output", ok, true, "--image-out or --index-out"},
		{"no version", []string{"--created", "1", "--binary", "linux/amd64=" + bin, "--image-out", "linux/amd64=" + out}, true, "--version"},
		{"bad binary flag", append(ok, "--binary", "linux/amd64"), true, "want PLATFORM=FILE"},
		{"bad time", append(ok[:2:2], "--created", "soon", "--index-out", out), true, "--created"},
		{"image of a platform without binary", append(ok, "--image-out", "linux/arm64="+out), true, "without a --binary"},
		{"missing binary file", []string{"--version", "v1", "--created", "1", "--binary", "linux/amd64=" + bin + ".gone", "--index-out", out}, false, "--binary linux/amd64"},
		{"image", append(ok, "--image-out", "linux/amd64="+out), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args, io.Discard)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tarball.ImageFromPath(out, nil); err != nil {
					t.Errorf("read back %s: %v", out, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, errUsage) != tc.usage {
				t.Errorf("run: %v; want an error containing %q, usage %v", err, tc.want, tc.usage)
			}
		})
	}
}
