package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// The log goes to stderr in the chosen format, filtered by level; the fatal
// error stays one plain line after it, whatever the format.
func TestLogFormatAndLevel(t *testing.T) {
	dsn := testenv.Database(t)
	base := append(connArgs(t, dsn), "--sink", "stdout", "-s", testenv.Name(t))

	_, stderr, code := pg2kinesis(t, append(base, "--log-format", "json", "--log-level", "debug")...)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (no slot); stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[len(lines)-1], "pg2kinesis: ") {
		t.Fatalf("stderr %q: want log lines, then one error line", stderr)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("first line %q is not JSON: %v", lines[0], err)
	}
	if rec["msg"] != "starting" || rec["level"] != "INFO" {
		t.Fatalf("first line %v, want the INFO starting line", rec)
	}

	_, stderr, code = pg2kinesis(t, append(base, "--log-level", "error")...)
	if code != 1 || strings.Contains(stderr, "starting") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("--log-level error: exit %d, stderr %q; want only the error line", code, stderr)
	}
}
