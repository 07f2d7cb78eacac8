package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFlushedLSN(t *testing.T) {
	for _, tc := range []struct {
		name, page string
		want       uint64
		ok         bool
	}{
		{"plain", "# TYPE pg2kinesis_flushed_lsn gauge\npg2kinesis_flushed_lsn 1234\n", 1234, true},
		{"exponent", "x 1\npg2kinesis_flushed_lsn 1.00663376e+08\ny 2\n", 100663376, true},
		{"last line, no newline", "x 1\npg2kinesis_flushed_lsn 5", 5, true},
		{"a longer name is not it", "x 1\npg2kinesis_flushed_lsn_total 5\n", 0, false},
		{"missing", "x 1\n", 0, false},
		{"garbage", "x 1\npg2kinesis_flushed_lsn NaNx\n", 0, false},
		{"negative", "x 1\npg2kinesis_flushed_lsn -1\n", 0, false},
		{"NaN", "x 1\npg2kinesis_flushed_lsn NaN\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := flushedLSN([]byte(tc.page))
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("flushedLSN = %d, %v; want %d, ok %v", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestMetricsAddr(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "p2k.log")
	if got, err := metricsAddr(log); got != "" || err != nil {
		t.Fatalf("no log yet: %q, %v; want nothing", got, err)
	}
	if err := os.WriteFile(log, []byte("time=x level=INFO msg=starting\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := metricsAddr(log); got != "" || err != nil {
		t.Fatalf("not serving yet: %q, %v; want nothing", got, err)
	}
	line := `time=x level=INFO msg="serving metrics and health checks" addr=127.0.0.1:40123 paths="/metrics /healthz /readyz"` + "\n"
	if err := os.WriteFile(log, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := metricsAddr(log); got != "127.0.0.1:40123" || err != nil {
		t.Fatalf("serving: %q, %v; want 127.0.0.1:40123", got, err)
	}
}
