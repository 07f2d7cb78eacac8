package main

// The start-time checks: those that fail on what the user must change
// exit 2 with one line naming the thing and the fix, and leave nothing
// behind; wal2json's server-side drops are a warning.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// A pgoutput start on a database with a keyless table would create a
// publication that breaks the application's UPDATE: it exits 2, names the
// table and the fixes, and creates neither publication nor slot; a
// --table-pat that excludes the table, with the publication made from it,
// starts.
func TestKeylessTableRefusesPublication(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	if _, err := conn.Exec(t.Context(), "CREATE TABLE nokey (v int); INSERT INTO nokey VALUES (1); CREATE TABLE keyed (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	slot := testenv.Name(t)
	args := append(connArgs(t, dsn), "-s", slot, "--create-slot", "--pg-slot-output-plugin", "pgoutput")
	_, stderr, code := pg2kinesis(t, append(args, "--sink", "stdout")...)
	if code != exitUsage {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr)
	}
	checkOneLine(t, stderr, "public.nokey", "REPLICA IDENTITY FULL", "--publication-tables-from-pattern", "nothing was created")
	var pubs, slots int
	if err := conn.QueryRow(t.Context(), "SELECT (SELECT count(*) FROM pg_publication), (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1)", slot).Scan(&pubs, &slots); err != nil {
		t.Fatal(err)
	}
	if pubs != 0 || slots != 0 {
		t.Errorf("the refused start left %d publications and %d slots", pubs, slots)
	}
	if _, err := conn.Exec(t.Context(), "UPDATE nokey SET v = 2"); err != nil {
		t.Fatalf("the application's UPDATE fails after the refused start: %v", err)
	}

	d := startStdoutDaemon(t, append(args, "--publication-tables-from-pattern", "--table-pat", `^public\.keyed$`)...)
	testenv.WaitSlotStreaming(t, conn, slot)
	if _, err := conn.Exec(t.Context(), "UPDATE nokey SET v = 3"); err != nil {
		t.Fatalf("the application's UPDATE fails while the table is not published: %v", err)
	}
	d.stop(t)
}

// A --spool-dir that cannot hold files fails at start with exit 2, naming
// it, before anything connects (here nothing could: the port is closed).
func TestSpoolDirCheckedAtStart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, filepath.Join(file, "spool")} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			_, stderr, code := pg2kinesis(t, "-h", "127.0.0.1", "-p", "1", "--sink", "stdout",
				"--pg-slot-output-plugin", "pgoutput", "--spool-dir", dir)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			checkOneLine(t, stderr, "--spool-dir "+dir, "writ")
		})
	}
	// Streaming off, the spool is not used, and not checked.
	_, stderr, _ := pg2kinesis(t, "-h", "127.0.0.1", "-p", "1", "--sink", "stdout",
		"--pg-slot-output-plugin", "pgoutput", "--pg-streaming=false", "--spool-dir", file)
	if strings.Contains(stderr, "--spool-dir") {
		t.Errorf("--spool-dir checked with streaming off: %s", stderr)
	}
}

// With wal2json, the start warns about the published tables whose updates
// and deletes wal2json drops on the server: a keyed table under REPLICA
// IDENTITY NOTHING, and a keyless one only with --full-change (without
// it the table is not published at all).
func TestWal2JSONDropsWarnedAtStart(t *testing.T) {
	// A keyless table is published, and so named, with --full-change and
	// in JSON, which publishes keyless tables by default.
	for _, tc := range []struct {
		flags   []string
		keyless bool
	}{{nil, false}, {[]string{"--full-change"}, true}, {[]string{"-f", "JSON"}, true}} {
		full := tc.keyless
		t.Run(fmt.Sprintf("%v", tc.flags), func(t *testing.T) {
			dsn := testenv.Database(t)
			conn := testenv.Connect(t, dsn)
			if _, err := conn.Exec(t.Context(), "CREATE TABLE nokey (v int); CREATE TABLE keyed (id int PRIMARY KEY); "+
				"CREATE TABLE nothing (id int PRIMARY KEY); ALTER TABLE nothing REPLICA IDENTITY NOTHING; "+
				"CREATE TABLE skipped (id int PRIMARY KEY); ALTER TABLE skipped REPLICA IDENTITY NOTHING"); err != nil {
				t.Fatal(err)
			}
			slot := testenv.Name(t)
			args := append(connArgs(t, dsn), "-s", slot, "--create-slot", "--pg-slot-output-plugin", "wal2json", "--table-pat", `^public\.(nokey|keyed|nothing)$`)
			args = append(args, tc.flags...)
			d := startStdoutDaemon(t, args...)
			testenv.WaitSlotStreaming(t, conn, slot)
			d.stop(t)
			const warning = "wal2json does not send the updates and deletes of these tables"
			var line string
			for _, l := range strings.Split(d.log(), "\n") {
				if strings.Contains(l, warning) {
					if line != "" {
						t.Fatalf("warned twice; log:\n%s", d.log())
					}
					line = l
				}
			}
			want, count := []string{"public.nothing"}, "count=1"
			if full {
				want, count = []string{"public.nokey", "public.nothing"}, "count=2"
			}
			for _, w := range append(want, count) {
				if !strings.Contains(line, w) {
					t.Errorf("warning %q lacks %q; log:\n%s", line, w, d.log())
				}
			}
			for _, not := range []string{"public.keyed", "public.skipped"} {
				if strings.Contains(line, not) {
					t.Errorf("warning %q names %s", line, not)
				}
			}
			if !full && strings.Contains(line, "public.nokey") {
				t.Errorf("warning %q names public.nokey, which is not published without --full-change or JSON", line)
			}
		})
	}
}

// --pg-slot-failover reaches the slot: before PostgreSQL 17 the start
// exits 2 naming the flag and creates no slot; from 17 on the slot it
// creates is a failover slot.
func TestSlotFailoverFlag(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	slot := testenv.Name(t)
	args := append(connArgs(t, dsn), "-s", slot, "--create-slot", "--pg-slot-failover", "--sink", "stdout")
	if testenv.ServerMajor(t) < 17 {
		_, stderr, code := pg2kinesis(t, args...)
		if code != exitUsage {
			t.Errorf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr)
		}
		checkOneLine(t, stderr, "--pg-slot-failover needs PostgreSQL 17")
		var slots int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&slots); err != nil || slots != 0 {
			t.Errorf("the refused start left %d slots (%v)", slots, err)
		}
		return
	}
	d := startStdoutDaemon(t, args...)
	testenv.WaitSlotStreaming(t, conn, slot)
	var failover bool
	if err := conn.QueryRow(t.Context(), "SELECT failover FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&failover); err != nil || !failover {
		t.Errorf("slot %s: failover %t (%v), want a failover slot", slot, failover, err)
	}
	d.stop(t)
}
