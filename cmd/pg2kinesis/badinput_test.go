package main

// The bad-input suite: every rejected input gives one plain line on stderr
// (the others are structured log records) and the documented exit code,
// 2 for bad usage and 1 for a fatal error; the inputs the daemon accepts
// with a warning (a table without a key, a --table-pat that matches
// nothing) warn as the README says and go on.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// plainLines are the lines of stderr that are not structured log records.
func plainLines(stderr string) []string {
	var plain []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if l != "" && !strings.HasPrefix(l, "time=") {
			plain = append(plain, l)
		}
	}
	return plain
}

// checkOneLine fails unless stderr has exactly one plain line, naming the
// program and containing every want.
func checkOneLine(t *testing.T, stderr string, want ...string) {
	t.Helper()
	plain := plainLines(stderr)
	if len(plain) != 1 || !regexp.MustCompile(`^pg2kinesis( tail| snapshot)?: `).MatchString(plain[0]) {
		t.Fatalf("stderr has plain lines %q, want one starting with \"pg2kinesis: \" (or a subcommand's name); stderr:\n%s", plain, stderr)
	}
	for _, w := range want {
		if !strings.Contains(plain[0], w) {
			t.Errorf("error %q lacks %q", plain[0], w)
		}
	}
}

func TestBadUsageExitsTwo(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want []string
	}{
		{args: []string{"--pg-slot-output-plugin", "nope"}, want: []string{`unknown output plugin "nope"`}},
		{args: []string{"--publication-tables-from-pattern", "--table-pat", "x"}, want: []string{"--publication-tables-from-pattern", "pgoutput only"}},
		{args: []string{"--pg-slot-output-plugin", "pgoutput", "--publication-tables-from-pattern"}, want: []string{"needs --table-pat"}},
		{args: []string{"--pg-slot-output-plugin", "pgoutput", "--publication", ""}, want: []string{"--publication must not be empty"}},
		{args: []string{"-f", "YAML"}, want: []string{`"YAML" for --message-formatter`}},
		{args: []string{"--operations", "merge"}, want: []string{`"merge" for --operations`}},
		{args: []string{"-f", "CSV", "--full-change"}, want: []string{"--full-change", "CSV"}},
		{args: []string{"--table-pat", "("}, want: []string{"invalid --table-pat"}},
		{args: []string{"--partition-key", "row"}, want: []string{`"row" for --partition-key`}},
		{args: []string{"--oversize", "truncate"}, want: []string{`"truncate" for --oversize`}},
		{args: []string{"--sink", "file"}, want: []string{`"file" for --sink`}},
		{args: []string{"-s", "My-Slot"}, want: []string{`"My-Slot"`, "--pg-slot-name"}},
		{args: []string{"--shard-count", "0"}, want: []string{"--shard-count"}},
		{args: []string{"--shard-count", "many"}, want: []string{"shard-count", "whole number"}},
		{args: []string{"--flush-interval", "soon"}, want: []string{"flush-interval", "duration"}},
		{args: []string{"--status-interval", "0s"}, want: []string{"--status-interval", "greater than 0"}},
		{args: []string{"--max-backoff", "-1s"}, want: []string{"--max-backoff", "greater than 0"}},
		{args: []string{"--create-slot=maybe"}, want: []string{"create-slot"}},
		{args: []string{"--bogus"}, want: []string{"bogus", "--help"}},
		{args: []string{"extra"}, want: []string{`unexpected argument "extra"`}},
		{args: []string{"--pg-dsn", "host=x port=notaport"}, want: []string{"invalid Postgres connection settings"}},
		{env: []string{"PG2KINESIS_CREATE_SLOT=maybe"}, want: []string{"PG2KINESIS_CREATE_SLOT", `"maybe"`}},
		{env: []string{"PG2KINESIS_MESSAGE_FORMATTER=XML"}, want: []string{`"XML" for --message-formatter`}},
		{args: []string{"-p", "notaport"}, want: []string{`"notaport"`, "-p (--pg-port)", "1 to 65535"}},
		{args: []string{"-p", "70000"}, want: []string{`"70000"`, "-p (--pg-port)", "1 to 65535"}},
		{env: []string{"PG2KINESIS_PG_PORT=abc"}, want: []string{`"abc"`, "PG2KINESIS_PG_PORT", "1 to 65535"}},
		{args: []string{"--pg-dsn", "host=x port=70000"}, want: []string{"port in --pg-dsn", "1 to 65535"}},
		// Stream names break Kinesis' rules before any AWS call (no endpoint
		// is reachable here: an AWS call would fail with exit 1).
		{args: []string{"--stream-name", ""}, env: noAWS, want: []string{`--stream-name ""`, "1 to 128"}},
		{args: []string{"-k", strings.Repeat("s", 129)}, env: noAWS, want: []string{"--stream-name", "1 to 128"}},
		{args: []string{"-k", "bad name!"}, env: noAWS, want: []string{`--stream-name "bad name!"`, "PG2KINESIS_STREAM_NAME", "letters, digits"}},
		{env: []string{"PG2KINESIS_PG_SLOT_NAM=cdc"}, want: []string{"unknown environment variable PG2KINESIS_PG_SLOT_NAM", "did you mean PG2KINESIS_PG_SLOT_NAME?"}},
		// The subcommands read the same variables.
		{args: []string{"tail"}, env: []string{"PG2KINESIS_STREAM_NAM=x"}, want: []string{"pg2kinesis tail", "PG2KINESIS_STREAM_NAM", "did you mean PG2KINESIS_STREAM_NAME?"}},
		{args: []string{"snapshot", "--status"}, env: []string{"PG2KINESIS_SNAPSHOT_TABEL=x"}, want: []string{"pg2kinesis snapshot", "did you mean PG2KINESIS_SNAPSHOT_TABLE?"}},
		{args: []string{"--snapshot", "bogus"}, want: []string{`"bogus" for --snapshot`, "initial_only"}},
		{args: []string{"--snapshot-chunk-rows", "0"}, want: []string{"--snapshot-chunk-rows", "1 to 1000000"}},
		{args: []string{"--snapshot-table", "a.b.c"}, want: []string{"--snapshot-table", "SCHEMA.TABLE"}},
		{args: []string{"snapshot"}, want: []string{"pg2kinesis snapshot", "--table", "--status"}},
		{args: []string{"snapshot", "--table"}, want: []string{"pg2kinesis snapshot", "--table needs a table name"}},
		{args: []string{"--metrics-addr", "9187"}, want: []string{`invalid --metrics-addr "9187"`, "host:port"}},
		{args: []string{"--stall-timeout", "0s"}, want: []string{"--stall-timeout", "greater than 0"}},
		{args: []string{"--heartbeat-interval", "-1m"}, want: []string{"--heartbeat-interval", "0 (off)"}},
		{args: []string{"--heartbeat-dsn", "host=primary port=notaport password=pw-4711"}, want: []string{"invalid --heartbeat-dsn", "1 to 65535"}},
		// --pg-iam-auth settings that no token works with; AWS is not contacted.
		{args: []string{"--pg-iam-auth", "-h", "/var/run/postgresql", "-u", "cdc", "--aws-region", "eu-west-1"}, env: noAWS, want: []string{"--pg-iam-auth", "not a local socket", "--pg-host"}},
		{args: []string{"--pg-iam-auth", "-h", "db.example.com", "-u", "cdc"}, env: noAWS, want: []string{"--pg-iam-auth", "region", "--aws-region"}},
	} {
		t.Run(strings.Join(append(tc.env, tc.args...), " "), func(t *testing.T) {
			_, stderr, code := pg2kinesisEnv(t, tc.env, tc.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			checkOneLine(t, stderr, tc.want...)
		})
	}
}

// The PG2KINESIS_* variables that are not settings (see CheckEnviron) do
// not stop a run.
func TestReservedVariablesAccepted(t *testing.T) {
	env := []string{"PG2KINESIS_TEST_PG_DSN=x", "PG2KINESIS_SERVICES_DIR=x", "PG2KINESIS_DEMO_METRICS_PORT=1",
		"PG2KINESIS_BENCH_OUTAGE_PORT=1", "PG2KINESIS_SERVICE_HOST=10.0.0.1", "PG2KINESIS_PORT_9187_TCP=tcp://10.0.0.1:9187"}
	out, stderr, code := pg2kinesisEnv(t, env, "--version")
	if code != exitOK || !strings.HasPrefix(out, "pg2kinesis ") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want the version", code, out, stderr)
	}
}

// noAWS hides any AWS configuration of the machine (a region, a user's
// profile) from pg2kinesis.
var noAWS = []string{"AWS_REGION=", "AWS_DEFAULT_REGION=", "AWS_PROFILE=", "AWS_CONFIG_FILE=/nonexistent",
	"AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true"}

// pg2kinesisEnv is pg2kinesis with extra environment variables.
func pg2kinesisEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if len(env) == 0 {
		return pg2kinesis(t, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	_ = cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("%v did not run", args)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// Inputs that are well-formed but wrong: exit 1, one line that says what
// is wrong (and never echoes a password).
func TestBadInputExitsOne(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	dsn := testenv.Database(t)
	base := connArgs(t, dsn)
	slot := testenv.Name(t)
	srv := testenv.StartCluster(t, testenv.ClusterOptions{Conf: "wal_level = logical", Password: "right-pw-4711"})
	wrongPW := strings.Replace(srv.DSN, "right-pw-4711", "wrong-pw-4711", 1)
	conn := testenv.Connect(t, dsn)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	otherSlot := testenv.Name(t)
	if _, err := conn.Exec(t.Context(), "SELECT pg_create_logical_replication_slot($1, 'wal2json')", otherSlot); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		aws  bool
		want []string
		not  string // absent from the line, if set
	}{
		{"unreachable Postgres", []string{"-h", "127.0.0.1", "-p", "1", "--sink", "stdout"}, false, []string{"connect to Postgres", "127.0.0.1:1", "connection refused"}, ""},
		{"wrong password", []string{"--pg-dsn", wrongPW, "--sink", "stdout"}, false, []string{"password authentication failed", `"postgres"`}, ""},
		{"right password", []string{"--pg-dsn", srv.DSN, "--sink", "stdout", "-s", slot}, false, []string{fmt.Sprintf("slot %q does not exist", slot)}, ""},
		{"no such database", append(base, "-d", "no_such_db_4711", "--sink", "stdout"), false, []string{`database "no_such_db_4711" does not exist`}, ""},
		// With sslmode prefer (the default) on a server without TLS, the
		// refused TLS attempt is left out: the line gives the real cause.
		{"wrong password, sslmode prefer", []string{"--pg-dsn", wrongPW, "--pg-sslmode", "prefer", "--sink", "stdout"}, false, []string{"password authentication failed"}, "tls error"},
		{"no such database, sslmode prefer", append(base, "-d", "no_such_db_4711", "--pg-sslmode", "prefer", "--sink", "stdout"), false, []string{`database "no_such_db_4711" does not exist`}, "tls error"},
		{"unreachable Postgres, said once", []string{"-h", "127.0.0.1", "-p", "1", "--sink", "stdout"}, false, []string{"connection refused"}, "; 127.0.0.1:1"},
		// TLS itself is the problem: kept, with the fix.
		{"no TLS, sslmode require", append(base, "--pg-sslmode", "require", "--sink", "stdout"), false, []string{"server refused TLS connection", "does not accept TLS", "--pg-sslmode prefer"}, ""},
		{"missing slot", append(base, "-s", slot, "--sink", "stdout"), false, []string{fmt.Sprintf("slot %q does not exist", slot), "--create-slot"}, ""},
		{"slot of another plugin", append(base, "-s", otherSlot, "--sink", "stdout"), false, []string{`output plugin "wal2json"`, "--pg-slot-output-plugin wal2json"}, ""},
		{"missing stream", append(base, "--kinesis-endpoint", ep, "-k", "no_such_stream"), true, []string{`"no_such_stream"`, "us-east-1", "--create-stream"}, ""},
		{"metrics port in use", append(base, "-s", otherSlot, "--pg-slot-output-plugin", "wal2json", "--sink", "stdout", "--metrics-addr", busy.Addr().String()),
			false, []string{"--metrics-addr " + busy.Addr().String(), "address already in use"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var env []string
			if tc.aws {
				env = testenv.AWSEnv()
			}
			_, stderr, code := pg2kinesisEnv(t, env, tc.args...)
			if code != exitFatal {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitFatal, stderr)
			}
			checkOneLine(t, stderr, tc.want...)
			if tc.not != "" && strings.Contains(stderr, tc.not) {
				t.Errorf("stderr says %q:\n%s", tc.not, stderr)
			}
			if strings.Contains(stderr, "pw-4711") {
				t.Errorf("stderr shows the password:\n%s", stderr)
			}
		})
	}
}

// stdoutDaemon is a daemon with the stdout sink, its lines collected.
type stdoutDaemon struct {
	*daemon
	mu    sync.Mutex
	lines []string
}

func startStdoutDaemon(t *testing.T, args ...string) *stdoutDaemon {
	t.Helper()
	cmd := exec.Command(binary, append(args, "--sink", "stdout")...)
	cmd.Env = cleanEnv()
	d := &stdoutDaemon{daemon: &daemon{cmd: cmd, stderr: &testenv.LogBuffer{}, done: make(chan error, 1)}}
	cmd.Stderr = d.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			d.mu.Lock()
			d.lines = append(d.lines, sc.Text())
			d.mu.Unlock()
		}
		d.done <- cmd.Wait() // after the last read, as StdoutPipe requires
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return d
}

// waitLine waits for a stdout line containing want and returns every line
// so far.
func (d *stdoutDaemon) waitLine(t *testing.T, want string) []string {
	t.Helper()
	var lines []string
	waitFor(t, 30*time.Second, fmt.Sprintf("a line with %q on stdout", want), func() bool {
		running(t, d.daemon)
		d.mu.Lock()
		defer d.mu.Unlock()
		lines = append([]string(nil), d.lines...)
		for _, l := range lines {
			if strings.Contains(l, want) {
				return true
			}
		}
		return false
	})
	return lines
}

// A table without a primary key: its changes are skipped with one warning
// naming it, unless --full-change, which publishes them.
func TestTableWithoutKey(t *testing.T) {
	for _, full := range []bool{false, true} {
		t.Run(fmt.Sprintf("full-change=%v", full), func(t *testing.T) {
			dsn := testenv.Database(t)
			conn := testenv.Connect(t, dsn)
			for _, sql := range []string{"CREATE TABLE nokey (v int)", "CREATE TABLE keyed (id int PRIMARY KEY)"} {
				if _, err := conn.Exec(t.Context(), sql); err != nil {
					t.Fatal(err)
				}
			}
			slot := testenv.Name(t)
			args := append(connArgs(t, dsn), "-s", slot, "--create-slot")
			if full {
				args = append(args, "--full-change")
			}
			d := startStdoutDaemon(t, args...)
			testenv.WaitSlotStreaming(t, conn, slot)
			// The keyed row commits last: once it is out, so is (or is
			// not) every nokey row before it.
			for _, sql := range []string{"INSERT INTO nokey VALUES (1)", "INSERT INTO nokey VALUES (2)", "INSERT INTO keyed VALUES (7)"} {
				if _, err := conn.Exec(t.Context(), sql); err != nil {
					t.Fatal(err)
				}
			}
			// CSVPayload names public.keyed; a full change has "table": "keyed".
			keyed, nokeyName := "public.keyed", "public.nokey"
			if full {
				keyed, nokeyName = `"table": "keyed"`, `"table": "nokey"`
			}
			lines := d.waitLine(t, keyed)
			d.stop(t)
			nokey := 0
			for _, l := range lines {
				if strings.Contains(l, nokeyName) {
					nokey++
				}
			}
			const warning = "table has no primary key: its changes are not published"
			warned := strings.Count(d.log(), warning)
			switch {
			case !full && (nokey != 0 || warned != 1 || !strings.Contains(d.log(), "table=public.nokey")):
				t.Fatalf("without --full-change: %d nokey records (want 0), %d warnings (want 1 naming the table); stdout %q; log:\n%s", nokey, warned, lines, d.log())
			case full && (nokey != 2 || warned != 0):
				t.Fatalf("with --full-change: %d nokey records (want 2), %d warnings (want 0); stdout %q; log:\n%s", nokey, warned, lines, d.log())
			}
		})
	}
}

// A --table-pat that matches no table warns once at start, naming the
// pattern, and is not fatal: a matching table created later is published.
func TestTablePatMatchingNothing(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	if _, err := conn.Exec(t.Context(), "CREATE TABLE other (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	slot := testenv.Name(t)
	d := startStdoutDaemon(t, append(connArgs(t, dsn), "-s", slot, "--create-slot", "--table-pat", `^public\.later$`)...)
	testenv.WaitSlotStreaming(t, conn, slot)
	const warning = "--table-pat matches no table of the database"
	named := strings.Contains(d.log(), `table_pat=^public\.later$`) || strings.Contains(d.log(), `table_pat="^public\\.later$"`)
	if n := strings.Count(d.log(), warning); n != 1 || !named {
		t.Fatalf("%d warnings %q naming the pattern, want 1; log:\n%s", n, warning, d.log())
	}
	for _, sql := range []string{"INSERT INTO other VALUES (1)", "CREATE TABLE later (id int PRIMARY KEY)", "INSERT INTO later VALUES (2)"} {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	lines := d.waitLine(t, "public.later")
	d.stop(t)
	for _, l := range lines {
		if strings.Contains(l, "public.other") {
			t.Fatalf("a table the pattern does not match was published: %q", l)
		}
	}
}
