package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/config"
)

var update = flag.Bool("update", false, "rewrite the flag reference in README.md from --help")

const (
	flagsBegin = "<!-- flags:begin -->\n```text\n"
	flagsEnd   = "```\n<!-- flags:end -->"
)

// The README's flag reference is the --help text, kept equal by this test
// (go test ./cmd/pg2kinesis -update rewrites it).
func TestReadmeFlagReference(t *testing.T) {
	const path = "../../README.md"
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i, j := strings.Index(s, flagsBegin), strings.Index(s, flagsEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q ... %q markers", flagsBegin, flagsEnd)
	}
	var help bytes.Buffer
	config.Usage(&help)
	if got := s[i+len(flagsBegin) : j]; got != help.String() {
		if *update {
			s = s[:i+len(flagsBegin)] + help.String() + s[j:]
			if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatal("README.md's flag reference differs from --help: run go test ./cmd/pg2kinesis -update")
	}
}
