package main

// The snapshot tests' rig: a database, slot and stream per test, the state
// table read back, and the stream parsed into records ordered by WAL position.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis"
	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis/kpl"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// snapRig is one snapshot test's database, slot, stream and stream reader.
type snapRig struct {
	dsn    string
	conn   *pgx.Conn
	slot   string
	ep     string
	stream string
	plugin string
	shards int
	reader *streamReader
}

// newSnapRig creates the database and a stream, and runs stmts (the
// tables) before pg2kinesis starts. The stream has 2 shards, 1 with
// test_decoding (see the top of the file). With pgoutput it creates the
// publication pg2kinesis for tables and the sentinel table.
func newSnapRig(t *testing.T, plugin string, tables []string, stmts ...string) *snapRig {
	t.Helper()
	return newSnapRigOn(t, testenv.Database(t), plugin, tables, stmts...)
}

// newSnapRigOn is newSnapRig on the database of dsn.
func newSnapRigOn(t *testing.T, dsn, plugin string, tables []string, stmts ...string) *snapRig {
	t.Helper()
	return newSnapRigAt(t, dsn, testenv.KinesisEndpoint(t), plugin, tables, stmts...)
}

// newSnapRigAt is newSnapRigOn with the stream on the Kinesis server at ep.
func newSnapRigAt(t *testing.T, dsn, ep, plugin string, tables []string, stmts ...string) *snapRig {
	t.Helper()
	testenv.RequirePlugin(t, plugin)
	if plugin == "pgoutput" {
		testenv.RequireMajor(t, 14, "a snapshot with pgoutput (its watermarks are logical messages, which pgoutput sends from 14 on)")
	}
	r := &snapRig{dsn: dsn, slot: testenv.Name(t), ep: ep, plugin: plugin, shards: 2}
	if plugin == "test_decoding" {
		r.shards = 1
	}
	r.conn = testenv.Connect(t, r.dsn)
	r.stream = testenv.Stream(t, testenv.KinesisClient(t, ep), r.shards)
	stmts = append(stmts, "CREATE TABLE sentinel (id int PRIMARY KEY)")
	if plugin == "pgoutput" {
		stmts = append(stmts, "CREATE PUBLICATION pg2kinesis FOR TABLE "+strings.Join(append(slices.Clone(tables), "sentinel"), ", "))
	}
	sqlExec(t, r.conn, stmts...)
	r.reader = readStream(t, ep, r.stream)
	return r
}

// args are the daemon's flags: JSON records keyed by row, short intervals.
// endpoint may be a proxy of r.ep.
func (r *snapRig) args(t *testing.T, endpoint, mode string, chunkRows int, extra ...string) []string {
	t.Helper()
	a := append(connArgs(t, r.dsn), "-s", r.slot, "--create-slot", "--pg-slot-output-plugin", r.plugin,
		"--kinesis-endpoint", endpoint, "-k", r.stream, "-f", "JSON", "--partition-key", "pk",
		"--status-interval", "200ms", "--flush-interval", "50ms", "--max-backoff", "1s",
		"--snapshot", mode, "--snapshot-chunk-rows", strconv.Itoa(chunkRows))
	return append(a, extra...)
}

func sqlExec(t *testing.T, conn *pgx.Conn, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := conn.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// snapState is a table's row of the state table.
type snapState struct {
	state   string
	lastKey []string
	rows    int64
	chunks  int64
}

// state reads table's state row; found is false when there is none (or
// the server does not answer: r.conn is opened again if it was lost).
func (r *snapRig) state(t *testing.T, table string) (s snapState, found bool) {
	t.Helper()
	err := r.conn.QueryRow(context.Background(), `SELECT state, last_key, rows_published, chunks FROM pg2kinesis_snapshot
		WHERE slot = $1 AND table_schema = 'public' AND table_name = $2`, r.slot, table).Scan(&s.state, &s.lastKey, &s.rows, &s.chunks)
	if err != nil && r.conn.IsClosed() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, r.dsn); err == nil {
			old := r.conn
			r.conn = conn
			t.Cleanup(func() { _ = conn.Close(context.Background()) })
			_ = old.Close(context.Background())
		}
	}
	return s, err == nil
}

// waitState waits up to timeout until table's state row satisfies ok.
func (r *snapRig) waitState(t *testing.T, d *daemon, table, what string, timeout time.Duration, ok func(snapState) bool) snapState {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if d != nil {
			running(t, d)
		}
		s, found := r.state(t, table)
		if found && ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("the snapshot of %s: not %s after %s (state row %+v, found %v)", table, what, timeout, s, found)
			if d != nil {
				msg += "; log:\n" + d.log()
			}
			t.Fatal(msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *snapRig) waitDone(t *testing.T, d *daemon, table string) snapState {
	t.Helper()
	return r.waitState(t, d, table, "done", 5*time.Minute, func(s snapState) bool { return s.state == "done" })
}

// caughtUp waits until the slot has confirmed everything written so far
// (a non-transactional logical message gives a position to pass): every
// record is then acknowledged by Kinesis. Then it commits one sentinel row
// per shard and waits until the reader has read them: records of a shard
// are read in order, so the reader then holds every record.
func (r *snapRig) caughtUp(t *testing.T, d *daemon) []kinesis.TailRecord {
	t.Helper()
	sqlExec(t, r.conn, "SELECT pg_logical_emit_message(false, 'test', 'end')")
	var end string
	if err := r.conn.QueryRow(context.Background(), "SELECT pg_current_wal_lsn()::text").Scan(&end); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	deadline := start.Add(3 * time.Minute)
	defer func() { t.Logf("caught up and read out in %s", time.Since(start).Round(time.Millisecond)) }()
	for !testenv.SlotPassed(t, r.conn, r.slot, end) {
		running(t, d)
		if time.Now().After(deadline) {
			t.Fatalf("slot %s did not confirm %s within 3 minutes; log:\n%s", r.slot, end, d.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("slot confirmed the end in %s", time.Since(start).Round(time.Millisecond))
	return r.sentinels(t, d)
}

// sentinels commits a row of the sentinel table on each of the stream's
// shards (two split at 2^127, or one) and waits until the reader holds
// them.
func (r *snapRig) sentinels(t *testing.T, d *daemon) []kinesis.TailRecord {
	t.Helper()
	var base int
	if err := r.conn.QueryRow(context.Background(), "SELECT coalesce(max(id), 0) + 1 FROM sentinel").Scan(&base); err != nil {
		t.Fatal(err)
	}
	var low, high string
	if r.shards == 1 {
		high = strconv.Itoa(base + 1)
	}
	for id := base; low == "" || high == ""; id++ {
		if kpl.HashKey(fmt.Sprintf("public.sentinel:%d", id)).Hi < 1<<63 {
			if low == "" {
				low = strconv.Itoa(id)
			}
		} else if high == "" {
			high = strconv.Itoa(id)
		}
	}
	sqlExec(t, r.conn, fmt.Sprintf("INSERT INTO sentinel VALUES (%s), (%s)", low, high))
	want := map[string]bool{"public.sentinel:" + low: true, "public.sentinel:" + high: true}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		recs := r.reader.snapshot()
		seen := 0
		for _, rec := range recs {
			if want[rec.PartitionKey] && strings.Contains(string(rec.Data), `"op":"insert"`) {
				seen++
			}
		}
		if seen >= 2 {
			return recs
		}
		if d != nil {
			running(t, d)
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("the sentinel rows %s and %s are not in the stream after 2 minutes (%d records read)", low, high, len(recs))
			if d != nil {
				msg += "; log:\n" + d.log()
			}
			t.Fatal(msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jrec is a JSON record of the stream.
type jrec struct {
	Op        string          `json:"op"`
	Schema    string          `json:"schema"`
	Table     string          `json:"table"`
	LSN       string          `json:"lsn"`
	CommitLSN string          `json:"commit_lsn"`
	PK        json.RawMessage `json:"pk"`
	Before    json.RawMessage `json:"before"`
	After     json.RawMessage `json:"after"`

	commit, lsn pglogrepl.LSN
	partKey     string
	data        string
	it          *itemRec
}

// less orders records by their place in the WAL.
func (a *jrec) less(b *jrec) bool {
	if a.commit != b.commit {
		return a.commit < b.commit
	}
	return a.lsn < b.lsn
}

// parseRecords parses the records of table, in stream order; copies of a
// record already seen (re-sends) are left out.
func parseRecords(t *testing.T, recs []kinesis.TailRecord, table string) []*jrec {
	t.Helper()
	seen := map[string]bool{}
	var out []*jrec
	for _, rec := range recs {
		if seen[string(rec.Data)] {
			continue
		}
		seen[string(rec.Data)] = true
		var j jrec
		if err := json.Unmarshal(rec.Data, &j); err != nil {
			t.Fatalf("record %s: %v", rec.Data, err)
		}
		if j.Table != table {
			continue
		}
		var err error
		if j.CommitLSN != "" { // test_decoding: null
			j.commit, err = pglogrepl.ParseLSN(j.CommitLSN)
		}
		if err == nil {
			j.lsn, err = pglogrepl.ParseLSN(j.LSN)
		}
		if err != nil {
			t.Fatalf("record %s: %v", rec.Data, err)
		}
		j.partKey, j.data = rec.PartitionKey, string(rec.Data)
		out = append(out, &j)
	}
	return out
}

// checkKeyOrder checks that each partition key's records are in its shard
// in WAL order (when they say where they commit), and that every read has
// no before.
func checkKeyOrder(t *testing.T, recs []*jrec) {
	t.Helper()
	last := map[string]*jrec{}
	bad := 0
	for _, r := range recs {
		if r.Op == "read" && string(r.Before) != "null" {
			t.Errorf("a read with a before: %s", r.data)
		}
		if p := last[r.partKey]; p != nil && p.commit != 0 && r.commit != 0 && r.less(p) {
			if bad++; bad <= 5 {
				t.Errorf("partition key %s: record\n%s\nafter\n%s", r.partKey, r.data, p.data)
			}
		}
		last[r.partKey] = r
	}
}

// walOrder is recs sorted by their place in the WAL; in the stream's order
// if one does not say where it commits (test_decoding, on one shard).
func walOrder(recs []*jrec) []*jrec {
	s := slices.Clone(recs)
	for _, r := range recs {
		if r.commit == 0 {
			return s
		}
	}
	slices.SortStableFunc(s, func(a, b *jrec) int {
		switch {
		case a.less(b):
			return -1
		case b.less(a):
			return 1
		}
		return 0
	})
	return s
}
