package main

import (
	"strings"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// The binary reads --config: a bad key is a usage error (exit 2, one line),
// and a good file's settings apply, below the flags.
func TestConfigFile(t *testing.T) {
	bad := secretFile(t, "bad.yaml", "pg-slot-name: a\nstream: b\n")
	_, stderr, code := pg2kinesis(t, "--config", bad)
	if code != 2 || !strings.Contains(stderr, `unknown key "stream"`) || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("unknown key: exit %d, stderr %q", code, stderr)
	}

	dsn := testenv.Database(t)
	slot := testenv.Name(t)
	good := secretFile(t, "good.yaml", "sink: stdout\nlog-format: json\npg-slot-name: "+slot+"\npg-dsn: "+dsn+"\n")
	_, stderr, code = pg2kinesis(t, "--config", good, "--log-level", "warn")
	if code != 1 || !strings.Contains(stderr, `slot "`+slot+`" does not exist`) || strings.Contains(stderr, `"msg":"starting"`) {
		t.Fatalf("exit %d, stderr %q: want the file's slot, and no info line (the flag's warn level)", code, stderr)
	}
	_, stderr, _ = pg2kinesis(t, "--config", good)
	if !strings.Contains(stderr, `{"time":`) || !strings.Contains(stderr, `"slot":"`+slot+`"`) {
		t.Fatalf("stderr %q: want the file's JSON log format", stderr)
	}
}
