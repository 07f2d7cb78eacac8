package main

// Snapshot tests of DDL and targets: columns added mid-snapshot, which
// tables a snapshot covers, partitioned tables, dropped tables and quoted names.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv/kinesisproxy"
)

// A column added (ALTER TABLE ... ADD COLUMN ... DEFAULT) in the middle of
// a table's snapshot, for each plugin: the daemon goes on, the table is
// done, and every row's last record placed after the ALTER carries the new
// column, as the table holds the row then. Kinesis refuses every record
// until the ALTER has committed: the sink, which holds at most 16 MiB,
// fills, and the snapshot, whose rows are about 1 kB, stops in the middle
// of the table's 24 MB; it was described before (the state says running
// once the table is described).
func TestSnapshotColumnAddedMidSnapshot(t *testing.T) {
	for _, plugin := range []string{"test_decoding", "wal2json", "pgoutput"} {
		t.Run(plugin, func(t *testing.T) {
			t.Parallel()
			const rows, chunkRows = 24_000, 1000
			r := newSnapRig(t, plugin, []string{"items"}, itemsTable,
				fmt.Sprintf("INSERT INTO items SELECT i, repeat('x', 1000) || i, 0 FROM generate_series(1, %d) i", rows))
			p := kinesisproxy.Start(t, r.ep)
			var blocked atomic.Bool
			blocked.Store(true)
			p.Plan = func(int) kinesisproxy.Fault {
				if blocked.Load() {
					return kinesisproxy.Throttle
				}
				return kinesisproxy.Pass
			}
			d := startDaemon(t, r.args(t, p.URL, "initial", chunkRows)...)
			testenv.WaitSlotStreaming(t, r.conn, r.slot)
			r.waitState(t, d, "items", "running", time.Minute, func(s snapState) bool { return s.state == "running" })
			sqlExec(t, r.conn, "ALTER TABLE items ADD COLUMN extra int NOT NULL DEFAULT 7")
			altered := r.walLSN(t)
			blocked.Store(false)
			sqlExec(t, r.conn, "UPDATE items SET extra = 8 WHERE id % 1000 = 0") // a change with the new shape
			r.waitDone(t, d, "items")
			recs := parseRecords(t, r.caughtUp(t, d), "items")
			d.stop(t)
			// Folded in WAL order, every row's last record placed after the
			// ALTER has the column (a chunk read before the ALTER and
			// placed after it is read again, after it: its first copy may
			// lack the column).
			// A row whose last record was placed before the ALTER lacks
			// the column, as the table did then (the ALTER itself is no
			// change of a row).
			last := map[int]*jrec{}
			late := 0
			after := func(rec *jrec) bool {
				return (rec.commit != 0 && rec.commit > altered) || (rec.commit == 0 && rec.lsn > altered)
			}
			for _, rec := range walOrder(recs) {
				if rec.Op == "read" && after(rec) {
					late++
				}
				if rec.Op == "read" || rec.Op == "insert" || rec.Op == "update" {
					last[*rec.item(t).PK.ID] = rec
				}
			}
			missing := 0
			for id, rec := range last {
				if !after(rec) {
					continue
				}
				var row map[string]json.RawMessage
				if err := json.Unmarshal(rec.After, &row); err != nil {
					t.Fatal(err)
				}
				if _, ok := row["extra"]; !ok {
					if missing++; missing <= 3 {
						t.Errorf("row %d's last record, placed after the column was added, lacks it: %.300s", id, rec.data)
					}
				}
			}
			t.Logf("%d reads placed after the ALTER; %d of %d rows' last records without the new column", late, missing, len(last))
			if late == 0 {
				t.Error("no read placed after the ALTER: the scenario did not test it")
			}
			if len(last) != rows {
				t.Errorf("%d rows in the stream, want %d", len(last), rows)
			}
			if t.Failed() {
				t.Logf("log:\n%s", d.log())
			}
		})
	}
}

// Which tables an initial snapshot covers: those --table-pat matches (the
// state table never); none when --operations leaves out read; all of them
// again once --recreate-slot made the slot anew (its state is forgotten).
func TestSnapshotTargets(t *testing.T) {
	t.Parallel()
	const rows = 1000
	names := []string{"keep_a", "keep_b", "skip_c"}
	var stmts []string
	for _, n := range names {
		stmts = append(stmts, strings.Replace(itemsTable, "items", n, 1), strings.Replace(fillItems(rows), "items", n, 1))
	}
	r := newSnapRig(t, "wal2json", names, stmts...)
	runOnce := func(extra ...string) *daemon {
		t.Helper()
		d := startDaemon(t, r.args(t, r.ep, "initial_only", 300, extra...)...)
		if code := d.waitExit(t, 3*time.Minute); code != 0 {
			t.Fatalf("--snapshot initial_only %v exited %d, want 0; log:\n%s", extra, code, d.log())
		}
		return d
	}
	tablesOf := func() map[string]string {
		t.Helper()
		rows, err := r.conn.Query(context.Background(), "SELECT table_name, state FROM pg2kinesis_snapshot WHERE slot = $1", r.slot)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		var n, s string
		if _, err := pgx.ForEachRow(rows, []any{&n, &s}, func() error { out[n] = s; return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}

	d := runOnce("--operations", "insert,update,delete")
	if got := tablesOf(); len(got) != 0 || strings.Contains(d.log(), "snapshot of table started") {
		t.Errorf("--operations without read snapshotted %v; log:\n%s", got, d.log())
	}
	d = runOnce("--table-pat", "keep_")
	if got := tablesOf(); len(got) != 2 || got["keep_a"] != "done" || got["keep_b"] != "done" {
		t.Errorf("--table-pat keep_: state rows %v, want keep_a and keep_b done; log:\n%s", got, d.log())
	}
	r.waitReads(t, "keep_b", rows)
	d = runOnce("--table-pat", "keep_", "--recreate-slot")
	if got := tablesOf(); len(got) != 2 || got["keep_a"] != "done" || got["keep_b"] != "done" {
		t.Errorf("after --recreate-slot: state rows %v, want keep_a and keep_b done; log:\n%s", got, d.log())
	}
	for _, n := range []string{"keep_a", "keep_b"} {
		recs := r.waitReads(t, n, 2*rows)
		for id, c := range reads(t, recs) {
			if c != 2 {
				t.Errorf("%s: row %d read %d times, want twice (once per slot)", n, id, c)
			}
		}
	}
	if recs := parseRecords(t, r.reader.snapshot(), "skip_c"); len(recs) != 0 {
		t.Errorf("%d records of skip_c, which --table-pat leaves out", len(recs))
	}
}

// partitionedRig is a rig with a table partitioned in two, of rows rows.
func partitionedRig(t *testing.T, rows int) *snapRig {
	t.Helper()
	return newSnapRig(t, "wal2json", []string{"parent"},
		"CREATE TABLE parent (id int PRIMARY KEY, v text NOT NULL, n int NOT NULL) PARTITION BY RANGE (id)",
		"CREATE TABLE part_low PARTITION OF parent FOR VALUES FROM (MINVALUE) TO (1000)",
		"CREATE TABLE part_high PARTITION OF parent FOR VALUES FROM (1000) TO (MAXVALUE)",
		fmt.Sprintf("INSERT INTO parent SELECT i, 'row ' || i, 0 FROM generate_series(1, %d) i", rows))
}

// A partitioned table, whose changes are decoded under its partitions'
// names: initial_only reads its partitions' rows and exits 0.
func TestSnapshotPartitionedInitial(t *testing.T) {
	t.Parallel()
	const rows = 2000
	r := partitionedRig(t, rows)
	d := startDaemon(t, r.args(t, r.ep, "initial_only", 300)...)
	if code := d.waitExit(t, 2*time.Minute); code != 0 {
		t.Fatalf("--snapshot initial_only exited %d, want 0; log:\n%s", code, d.log())
	}
	r.waitReads(t, "part_low", 999)
	r.waitReads(t, "part_high", rows-999)
}

// A snapshot asked for by a partitioned table's name is refused (exit 2)
// or reads the partitions' rows; it is never accepted and left undone.
func TestSnapshotPartitionedRequest(t *testing.T) {
	t.Parallel()
	const rows = 2000
	r := partitionedRig(t, rows)
	d := startDaemon(t, r.args(t, r.ep, "never", 300)...)
	testenv.WaitSlotStreaming(t, r.conn, r.slot)
	out, errOut, code := r.snapshotCommand(t, "--table", "parent")
	switch code {
	case 2:
		t.Logf("refused: %s", errOut)
	case 0:
		deadline := time.Now().Add(time.Minute)
		for {
			running(t, d)
			var left int
			if err := r.conn.QueryRow(context.Background(), "SELECT count(*) FROM pg2kinesis_snapshot WHERE slot = $1 AND state <> 'done'", r.slot).Scan(&left); err != nil {
				t.Fatal(err)
			}
			if left == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pg2kinesis snapshot --table parent (stdout %q) was accepted; a minute later %d state rows are not done; log:\n%s", out, left, d.log())
			}
			time.Sleep(200 * time.Millisecond)
		}
		r.waitReads(t, "part_low", 999)
		r.waitReads(t, "part_high", rows-999)
	default:
		t.Fatalf("pg2kinesis snapshot --table parent: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	d.stop(t)
}

// A table dropped in the middle of its snapshot (the snapshot held there
// by a Kinesis that refuses every record until the drop): the daemon goes
// on, the dropped table's snapshot ends (done), and the next table's is
// delivered whole.
func TestSnapshotTableDroppedMidSnapshot(t *testing.T) {
	t.Parallel()
	const rows = 20_000
	r := newSnapRig(t, "wal2json", []string{"doomed", "kept"},
		strings.Replace(itemsTable, "items", "doomed", 1),
		fmt.Sprintf("INSERT INTO doomed SELECT i, repeat('x', 1000) || i, 0 FROM generate_series(1, %d) i", rows),
		strings.Replace(itemsTable, "items", "kept", 1),
		strings.Replace(fillItems(1000), "items", "kept", 1))
	p := kinesisproxy.Start(t, r.ep)
	var blocked atomic.Bool
	blocked.Store(true)
	p.Plan = func(int) kinesisproxy.Fault {
		if blocked.Load() {
			return kinesisproxy.Throttle
		}
		return kinesisproxy.Pass
	}
	d := startDaemon(t, r.args(t, p.URL, "initial", 1000)...)
	testenv.WaitSlotStreaming(t, r.conn, r.slot)
	r.waitState(t, d, "doomed", "running", time.Minute, func(s snapState) bool { return s.state == "running" })
	sqlExec(t, r.conn, "DROP TABLE doomed")
	blocked.Store(false)
	r.waitDone(t, d, "doomed")
	r.waitDone(t, d, "kept")
	recs := parseRecords(t, r.caughtUp(t, d), "kept")
	d.stop(t)
	checkFold(t, recs, tableRows(t, r.conn, "kept"))
	for _, l := range strings.Split(d.log(), "\n") {
		if strings.Contains(l, "table=public.doomed") {
			t.Log(l)
		}
	}
}

// Tables named as SQL names them, asked for with pg2kinesis snapshot: a
// quoted mixed-case name with a space, schema-qualified or not, and one in
// another schema; --status before any request says none ran.
func TestSnapshotRequestQuotedNames(t *testing.T) {
	t.Parallel()
	r := newSnapRig(t, "wal2json", nil,
		`CREATE TABLE "Mixed Case" (id int PRIMARY KEY, v text NOT NULL, n int NOT NULL)`,
		`INSERT INTO "Mixed Case" SELECT i, 'row ' || i, 0 FROM generate_series(1, 500) i`,
		`CREATE SCHEMA other`,
		`CREATE TABLE other.items (id int PRIMARY KEY, v text NOT NULL, n int NOT NULL)`,
		`INSERT INTO other.items SELECT i, 'other ' || i, 0 FROM generate_series(1, 300) i`)
	if out, errOut, code := r.snapshotCommand(t, "--status"); code != 0 || !strings.Contains(out, "no snapshot has run") {
		t.Errorf("--status before any request: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	d := startDaemon(t, r.args(t, r.ep, "never", 200)...)
	testenv.WaitSlotStreaming(t, r.conn, r.slot)
	for _, name := range []string{`"Mixed Case"`, `public."Mixed Case"`, `other.items`} {
		if out, errOut, code := r.snapshotCommand(t, "--table", name); code != 0 {
			t.Fatalf("pg2kinesis snapshot --table %s: exit %d, stdout %q, stderr %q", name, code, out, errOut)
		}
	}
	if _, errOut, code := r.snapshotCommand(t, "--table", "Mixed Case"); code != 2 || !strings.Contains(errOut, "Mixed Case") {
		t.Errorf("--table 'Mixed Case' unquoted: exit %d, stderr %q; want 2 naming it", code, errOut)
	}
	r.waitDone(t, d, "Mixed Case")
	var state string
	deadline := time.Now().Add(time.Minute)
	for state != "done" {
		running(t, d)
		_ = r.conn.QueryRow(context.Background(), "SELECT state FROM pg2kinesis_snapshot WHERE slot = $1 AND table_schema = 'other' AND table_name = 'items'", r.slot).Scan(&state)
		if time.Now().After(deadline) {
			t.Fatalf("other.items not done after a minute (state %q); log:\n%s", state, d.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	recs := r.caughtUp(t, d)
	d.stop(t)
	mixed, seen := 0, map[int]bool{}
	for _, rec := range parseRecords(t, recs, "Mixed Case") {
		if rec.Op != "read" {
			continue
		}
		mixed++
		var pk struct{ ID int }
		if err := json.Unmarshal(rec.PK, &pk); err != nil {
			t.Fatalf("key %s: %v", rec.PK, err)
		}
		seen[pk.ID] = true
	}
	// The second request of "Mixed Case", if the first had started, starts
	// it over: the rows published before count twice, up to all 500.
	if len(seen) != 500 || mixed < 500 || mixed > 1000 {
		t.Errorf("%d reads of \"Mixed Case\" naming %d of its 500 rows, want every row and 500 to 1000 reads", mixed, len(seen))
	}
	other := 0
	for _, rec := range parseRecords(t, recs, "items") {
		if rec.Op == "read" && rec.Schema == "other" {
			other++
		}
	}
	if other != 300 {
		t.Errorf("%d reads of other.items, want 300", other)
	}
}
