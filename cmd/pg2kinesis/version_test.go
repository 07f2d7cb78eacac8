package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// --version prints one line: the version and commit stamped at link time,
// else what the build recorded, and the Go version; its first two words
// are what it always printed ("pg2kinesis <version>").
func TestVersionLine(t *testing.T) {
	defer func(v, c string) { buildVersion, buildCommit = v, c }(buildVersion, buildCommit)
	for _, tc := range []struct {
		name, version, commit string
		want                  string // "" for any version and commit
	}{
		{"release", "v0.3.0-12-gabc1234", "abc1234def5678abc1234def5678abc1234def56",
			"pg2kinesis v0.3.0-12-gabc1234 (commit abc1234def5678abc1234def5678abc1234def56, " + runtime.Version() + ")"},
		{"dirty tree", "abc1234-dirty", "abc1234def5678abc1234def5678abc1234def56",
			"pg2kinesis abc1234-dirty (commit abc1234def5678abc1234def5678abc1234def56, " + runtime.Version() + ")"},
		{"not stamped", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buildVersion, buildCommit = tc.version, tc.commit
			got := versionLine()
			if tc.want != "" && got != tc.want {
				t.Errorf("versionLine() = %q, want %q", got, tc.want)
			}
			if !versionRE.MatchString(got) {
				t.Errorf("versionLine() = %q, not of the form %s", got, versionRE)
			}
		})
	}
}

var versionRE = regexp.MustCompile(`^pg2kinesis (\S+) \(commit (\S+), (go\S+)\)$`)

// The binary a plain go build makes (TestMain's) prints a version, a
// commit and the Go version it was built with.
func TestVersionFlag(t *testing.T) {
	out, _, code := pg2kinesis(t, "--version")
	m := versionRE.FindStringSubmatch(strings.TrimSuffix(out, "\n"))
	if code != 0 || m == nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("--version = %q, exit %d; want one line of the form %s", out, code, versionRE)
	}
	if m[3] != runtime.Version() {
		t.Errorf("--version says %s, built with %s", m[3], runtime.Version())
	}
}

// make release's binary (scripts/release.sh, for this machine's
// architecture only) is static, carries the stamped version and commit,
// and none of the image builder; SHA256SUMS lists it.
func TestStaticReleaseBinary(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("checks an ELF binary")
	}
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const version, commit = "v9.9.9-test", "0123456789abcdef0123456789abcdef01234567"
	dist := t.TempDir()
	cmd := exec.Command("../../scripts/release.sh", "binaries")
	cmd.Env = append(os.Environ(), "DIST="+dist, "PLATFORMS=linux/"+runtime.GOARCH, "VERSION="+version, "COMMIT="+commit)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh binaries: %v\n%s", err, out)
	}
	name := "pg2kinesis-" + version + "-linux-" + runtime.GOARCH
	bin := filepath.Join(dist, name)

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("has a PT_INTERP program header: it needs a dynamic loader")
		}
	}
	if f.Section(".interp") != nil {
		t.Error("has an .interp section")
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("links shared libraries %v (%v)", libs, err)
	}

	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("built with CGO_ENABLED=%q -trimpath=%q, want 0 and true", settings["CGO_ENABLED"], settings["-trimpath"])
	}
	for _, d := range info.Deps {
		if strings.Contains(d.Path, "go-containerregistry") {
			t.Errorf("the daemon links %s: only tools/mkimage may", d.Path)
		}
	}

	out, err := exec.Command(bin, "--version").Output()
	want := "pg2kinesis " + version + " (commit " + commit + ", " + runtime.Version() + ")\n"
	if err != nil || string(out) != want {
		t.Errorf("--version = %q, %v; want %q", out, err, want)
	}

	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if line := hex.EncodeToString(sum[:]) + "  " + name + "\n"; string(sums) != line {
		t.Errorf("SHA256SUMS = %q, want %q", sums, line)
	}
}
