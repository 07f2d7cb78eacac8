package main

// End-to-end tests of snapshots (--snapshot, pg2kinesis snapshot): the
// real binary publishes JSON records into kinesalite, the test reads the
// stream back, folds it per key and compares the fold with the table.
//
// The fold orders records by their position in the WAL (commit_lsn, then
// lsn), which is where the snapshot places a chunk's reads (its high
// watermark): a key-changing update deletes its old key, which may live on
// another shard, so the stream's order across shards says nothing. The
// order of each key's records in its shard is checked on its own
// (checkKeyOrder). test_decoding's records have no commit_lsn (its BEGIN
// does not say where the transaction commits): with it the stream has one
// shard, and the fold takes the stream's order.

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// (1) --snapshot initial with writes going on, for each plugin: the stream
// folded per key equals the table. 200,000 rows with test_decoding; 50,000
// with the others, to keep the suite's time modest (the binary is not
// built with -race, the fold is).
func TestSnapshotInitialFoldsToTheTable(t *testing.T) {
	for _, tc := range []struct {
		plugin string
		rows   int
	}{
		{"test_decoding", 200_000},
		{"wal2json", 50_000},
		{"pgoutput", 50_000},
	} {
		t.Run(tc.plugin, func(t *testing.T) {
			t.Parallel()
			r := newSnapRig(t, tc.plugin, []string{"items"}, itemsTable, fillItems(tc.rows))
			const chunkRows = 5000
			d := startDaemon(t, r.args(t, r.ep, "initial", chunkRows)...)
			testenv.WaitSlotStreaming(t, r.conn, r.slot)
			stop := writeItems(t, r.dsn, tc.rows, 1)
			start := time.Now()
			s := r.waitDone(t, d, "items")
			writes := stop()
			t.Logf("snapshot of %d rows done in %s (%d chunks, %d rows published), %d writes during it",
				tc.rows, time.Since(start).Round(time.Millisecond), s.chunks, s.rows, writes)
			recs := r.checkItemsStream(t, d)
			for id, n := range reads(t, recs) {
				if n > 1 {
					t.Errorf("row %d read %d times in one run without a fault; its records:\n%s", id, n, itemRecords(recs, id))
				}
			}
			if t.Failed() {
				t.Logf("log:\n%s", d.log())
			}
		})
	}
}

// snapshotCommand runs `pg2kinesis snapshot` with r's connection and slot.
func (r *snapRig) snapshotCommand(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return pg2kinesis(t, append(append([]string{"snapshot"}, args...), append(connArgs(t, r.dsn), "-s", r.slot)...)...)
}

var statusLine = regexp.MustCompile(`(?m)^public\.items\s+(\w+)\s+(\d+)\s+(\d+)`)

// (3) A snapshot asked for with `pg2kinesis snapshot --table` while a
// daemon (--snapshot never) streams and writes go on: the table's rows
// are published as reads and the fold equals the table; --status says it
// is done. Asked for again, the table is snapshotted again, and
// rows_published counts the second snapshot's reads.
func TestSnapshotOnlineRequest(t *testing.T) {
	t.Parallel()
	const rows, chunkRows = 30_000, 2000
	r := newSnapRig(t, "wal2json", []string{"items"}, itemsTable, fillItems(rows))
	d := startDaemon(t, r.args(t, r.ep, "never", chunkRows)...)
	testenv.WaitSlotStreaming(t, r.conn, r.slot)
	stop := writeItems(t, r.dsn, rows, 4)
	request := func() {
		t.Helper()
		out, errOut, code := r.snapshotCommand(t, "--table", "items")
		if code != 0 || !strings.Contains(out, "requested a snapshot of public.items for slot "+r.slot) {
			t.Fatalf("pg2kinesis snapshot --table items: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}
	status := func() (state string, rows, chunks int) {
		t.Helper()
		out, errOut, code := r.snapshotCommand(t, "--status")
		m := statusLine.FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf("pg2kinesis snapshot --status: exit %d, stdout %q, stderr %q; want a line for public.items", code, out, errOut)
		}
		rows, _ = strconv.Atoi(m[2])
		chunks, _ = strconv.Atoi(m[3])
		return m[1], rows, chunks
	}
	if _, ok := r.state(t, "items"); ok {
		t.Fatal("--snapshot never made a state row before any request")
	}
	request()
	first := r.waitDone(t, d, "items")
	if st, n, c := status(); st != "done" || n != int(first.rows) || c != int(first.chunks) {
		t.Errorf("--status says %s, %d rows, %d chunks; the state table done, %d rows, %d chunks", st, n, c, first.rows, first.chunks)
	}
	again := r.walLSN(t) // every read of the first snapshot is placed before
	request()
	if s, _ := r.state(t, "items"); s.state != "pending" || s.rows != 0 || s.chunks != 0 {
		t.Errorf("after the second request the state row is %+v, want pending with no rows or chunks", s)
	}
	second := r.waitDone(t, d, "items")
	if st, n, _ := status(); st != "done" || n != int(second.rows) {
		t.Errorf("--status says %s, %d rows; the state table done, %d rows", st, n, second.rows)
	}
	t.Logf("%d writes; first snapshot %+v, second %+v", stop(), first, second)
	recs := r.checkItemsStream(t, d)
	var n1, n2 int64
	for _, rec := range recs {
		if rec.Op == "read" && rec.commit < again {
			n1++
		} else if rec.Op == "read" {
			n2++
		}
	}
	if n1 != first.rows || n2 != second.rows {
		t.Errorf("the stream holds %d reads of the first snapshot and %d of the second; rows_published said %d and %d", n1, n2, first.rows, second.rows)
	}
	if second.rows < rows*8/10 {
		t.Errorf("the second snapshot published %d rows of about %d: the table was not snapshotted again", second.rows, rows)
	}
	if t.Failed() {
		t.Logf("log:\n%s", d.log())
	}
}

// waitExit waits up to timeout for d to exit and returns its exit code.
func (d *daemon) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("pg2kinesis still runs after %s; log:\n%s", timeout, d.log())
		return 0
	}
}

// waitReads waits until recs hold n distinct reads of table, and returns
// the records read.
func (r *snapRig) waitReads(t *testing.T, table string, n int) []*jrec {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		recs := parseRecords(t, r.reader.snapshot(), table)
		got := 0
		for _, rec := range recs {
			if rec.Op == "read" {
				got++
			}
		}
		if got >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream holds %d reads of %s after 2 minutes, want %d", got, table, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// (4) --snapshot initial_only exits 0 once the last chunk is acknowledged;
// every row of the table is in the stream as a read, once.
func TestSnapshotInitialOnlyExits(t *testing.T) {
	t.Parallel()
	const rows, chunkRows = 20_000, 3000
	r := newSnapRig(t, "pgoutput", []string{"items"}, itemsTable, fillItems(rows))
	d := startDaemon(t, r.args(t, r.ep, "initial_only", chunkRows)...)
	if code := d.waitExit(t, 5*time.Minute); code != 0 {
		t.Fatalf("--snapshot initial_only exited %d, want 0; log:\n%s", code, d.log())
	}
	var left int
	if err := r.conn.QueryRow(context.Background(), "SELECT count(*) FROM pg2kinesis_snapshot WHERE slot = $1 AND state <> 'done'", r.slot).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d tables not done when initial_only exited", left)
	}
	if !strings.Contains(d.log(), "initial snapshot delivered; stopping") {
		t.Errorf("the log does not say why it stopped:\n%s", d.log())
	}
	recs := r.waitReads(t, "items", rows)
	table := itemRows(t, r.conn)
	n := reads(t, recs)
	for _, rec := range recs {
		if rec.Op != "read" {
			t.Fatalf("a record that is not a read: %s", rec.data)
		}
	}
	for id := range table {
		if n[id] != 1 {
			t.Errorf("row %d: %d reads, want 1", id, n[id])
		}
	}
	checkFold(t, recs, table)

	// Run again on the same slot: everything is done, nothing is read
	// again.
	before, _ := r.state(t, "items")
	d = startDaemon(t, r.args(t, r.ep, "initial_only", chunkRows)...)
	if code := d.waitExit(t, 2*time.Minute); code != 0 {
		t.Fatalf("--snapshot initial_only run again exited %d, want 0; log:\n%s", code, d.log())
	}
	if strings.Contains(d.log(), "snapshot of table started") || strings.Contains(d.log(), "snapshot of table resumed") {
		t.Errorf("run again, initial_only read a table again; log:\n%s", d.log())
	}
	if s, _ := r.state(t, "items"); s.rows != before.rows || s.chunks != before.chunks || s.state != "done" {
		t.Errorf("run again, the state row went from %+v to %+v", before, s)
	}
}

// (6) Bad input: one line on stderr naming what is wrong, exit 2.
func TestSnapshotBadInput(t *testing.T) {
	check := func(t *testing.T, stderr string, code int, prefix string, want ...string) {
		t.Helper()
		plain := plainLines(stderr)
		if code != 2 || len(plain) != 1 || !strings.HasPrefix(plain[0], prefix) {
			t.Fatalf("exit %d, stderr %q; want exit 2 and one line starting %q", code, stderr, prefix)
		}
		for _, w := range want {
			if !strings.Contains(plain[0], w) {
				t.Errorf("error %q lacks %q", plain[0], w)
			}
		}
	}
	t.Run("bogus mode", func(t *testing.T) {
		_, errOut, code := pg2kinesis(t, "--snapshot", "bogus")
		check(t, errOut, code, "pg2kinesis: ", `"bogus"`, "--snapshot", "never", "initial", "initial_only")
	})
	t.Run("neither table nor status", func(t *testing.T) {
		_, errOut, code := pg2kinesis(t, "snapshot")
		check(t, errOut, code, "pg2kinesis snapshot: ", "--table", "--status")
	})
	t.Run("no such table", func(t *testing.T) {
		dsn := testenv.Database(t)
		out, errOut, code := pg2kinesis(t, append([]string{"snapshot", "--table", "no_such_table"}, append(connArgs(t, dsn), "-s", testenv.Name(t))...)...)
		check(t, errOut, code, "pg2kinesis snapshot: ", "no_such_table")
		if out != "" {
			t.Errorf("stdout %q, want nothing", out)
		}
	})
}

// canonical is a JSON object re-encoded with sorted keys and numbers as
// written, so that the stream's row and the table's compare as text.
func canonical(t *testing.T, raw []byte) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	b, err := json.Marshal(v) // maps marshal with sorted keys
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// snapshotOnce makes the tables named (each by its statements in tables)
// and runs pg2kinesis --snapshot initial_only with plugin over them, in
// chunks of chunkRows, which must exit 0.
func snapshotOnce(t *testing.T, plugin string, tables map[string][]string, names []string, chunkRows int) (*snapRig, *daemon) {
	t.Helper()
	var stmts []string
	for _, n := range names {
		stmts = append(stmts, tables[n]...)
	}
	r := newSnapRig(t, plugin, names, stmts...)
	d := startDaemon(t, r.args(t, r.ep, "initial_only", chunkRows)...)
	if code := d.waitExit(t, 5*time.Minute); code != 0 {
		t.Fatalf("--snapshot initial_only exited %d, want 0; log:\n%s", code, d.log())
	}
	return r, d
}
