package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func TestWait(t *testing.T) {
	const end = 1000
	serve := func(t *testing.T, page string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, page)
		}))
		t.Cleanup(srv.Close)
		log := filepath.Join(t.TempDir(), "p2k.log")
		line := `msg="serving metrics and health checks" addr=` + strings.TrimPrefix(srv.URL, "http://") + "\n"
		if err := os.WriteFile(log, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		return log
	}
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatalf("run true(1) for a pid that has exited: %v", err)
	}
	for _, tc := range []struct {
		name, page string
		pid        int
		want       string // in the error; "" for none
	}{
		{"flushed", "x 1\npg2kinesis_flushed_lsn 1000\n", os.Getpid(), ""},
		{"not yet", "x 1\npg2kinesis_flushed_lsn 999\n", os.Getpid(), "has not flushed 0/3E8 after 50ms (last: flushed 0/3E7)"},
		{"no such metric", "x 1\n", os.Getpid(), "no pg2kinesis_flushed_lsn"},
		{"exited", "x 1\npg2kinesis_flushed_lsn 1000\n", exited.Process.Pid, "exited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := wait(tc.pid, serve(t, tc.page), end, 5*time.Millisecond, 50*time.Millisecond)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("wait: %v; want an error with %q", err, tc.want)
			}
		})
	}
	t.Run("no address in the log", func(t *testing.T) {
		log := filepath.Join(t.TempDir(), "p2k.log")
		err := wait(os.Getpid(), log, end, 5*time.Millisecond, 30*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "names no metrics address yet") {
			t.Fatalf("wait: %v; want the timeout to say the log names no address", err)
		}
	})
}
