package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pg2kinesis-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "pg2kinesis")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build pg2kinesis: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// pg2kinesis runs the binary to completion with a clean PG2KINESIS_* env.
func pg2kinesis(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runBinary(t, cleanEnv(), args...)
}

// runBinary runs the binary to completion with env.
func runBinary(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// cleanEnv is the test process' environment without the PG2KINESIS_* and
// libpq variables, and with the metrics on a port of their own: daemons
// of tests that run in parallel cannot all listen on 127.0.0.1:9187.
func cleanEnv() []string {
	env := []string{"PG2KINESIS_METRICS_ADDR=127.0.0.1:0"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG2KINESIS_") && !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

func TestHelp(t *testing.T) {
	out, _, code := pg2kinesis(t, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, want := range []string{"-h, --pg-host", "--pg-slot-output-plugin", "default test_decoding", "PG2KINESIS_STREAM_NAME", "--recreate-slot"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func connArgs(t *testing.T, dsn string) []string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return []string{"-h", cfg.Host, "-p", fmt.Sprint(cfg.Port), "-u", cfg.User, "-d", cfg.Database, "--pg-sslmode", "disable"}
}

// The daemon streams CSV records to stdout and, on SIGTERM, stops reading, reports its
// last flushed position to Postgres and exits 0.
func TestStreamsAndStopsCleanlyOnSIGTERM(t *testing.T) {
	testenv.RequirePlugin(t, "wal2json")
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	if _, err := conn.Exec(t.Context(), "CREATE TABLE items (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	// Slots are server-wide: a name of its own keeps other tests' (and other
	// checkouts') default slot out of this one's way.
	slot := testenv.Name(t)
	args := append(connArgs(t, dsn), "-s", slot, "--sink", "stdout", "--create-slot", "--status-interval", "1h",
		"-f", "CSV", "--pg-slot-output-plugin", "wal2json")
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	testenv.WaitSlotStreaming(t, conn, slot)
	var commitLSN, xid string
	if err := conn.QueryRow(t.Context(), "INSERT INTO items VALUES (42) RETURNING pg_current_wal_insert_lsn()::text, txid_current()::text").Scan(&commitLSN, &xid); err != nil {
		t.Fatal(err)
	}
	waitLine := func(want string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for found := false; !found; {
			select {
			case l := <-lines:
				found = l == want
			case <-deadline:
				t.Fatalf("no line %q on stdout; stderr:\n%s", want, stderr.String())
			}
		}
	}
	waitLine("0,CDC," + xid + ",public.items,insert,42")
	// Row 43's record comes after row 42's commit in the stream: once it is
	// printed, that commit has been handled and acknowledged.
	if err := conn.QueryRow(t.Context(), "INSERT INTO items VALUES (43) RETURNING txid_current()::text").Scan(&xid); err != nil {
		t.Fatal(err)
	}
	waitLine("0,CDC," + xid + ",public.items,insert,43")

	// The status interval is an hour: only the final update at shutdown
	// can have moved the slot past the insert.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for range lines {
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("pg2kinesis did not exit within 15s of SIGTERM")
	}
	var passed bool
	if err := conn.QueryRow(t.Context(),
		"SELECT confirmed_flush_lsn >= $1::pg_lsn FROM pg_replication_slots WHERE slot_name = $2", commitLSN, slot).Scan(&passed); err != nil {
		t.Fatal(err)
	}
	if !passed {
		t.Fatalf("confirmed_flush_lsn did not reach %s: no final status update", commitLSN)
	}
	if !strings.Contains(stderr.String(), "replication stopped") {
		t.Errorf("stderr lacks the shutdown line:\n%s", stderr.String())
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
