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
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis"
	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis/kpl"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv/kinesisproxy"
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

// items is the table of the fold tests; writeItems changes it.
const itemsTable = "CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL, n int NOT NULL)"

func fillItems(rows int) string {
	return fmt.Sprintf("INSERT INTO items SELECT i, 'row ' || i, 0 FROM generate_series(1, %d) i", rows)
}

// writeItems changes random rows of items (ids 1 to rows plus a tenth)
// until stop is called: updates, key changes, deletes and inserts, one
// statement per transaction, at most one every 2 ms. A lost connection (a
// Postgres restart) is opened again, for up to a minute; a statement that
// fails on a live connection fails the test. Whether a statement cut off
// with its connection committed does not matter: the checks compare the
// stream with the table, not with the statements.
func writeItems(t *testing.T, dsn string, rows int, seed uint64) (stop func() int) {
	t.Helper()
	return writeTable(t, dsn, "items", rows, seed)
}

// writeTable is writeItems on table, made as items is.
func writeTable(t *testing.T, dsn, table string, rows int, seed uint64) (stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	n := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		var conn *pgx.Conn
		defer func() {
			if conn != nil {
				_ = conn.Close(context.Background())
			}
		}()
		rng := rand.New(rand.NewPCG(seed, 2))
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var lost time.Time // when the connection was lost; zero while it lives
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if conn == nil {
				var err error
				cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
				conn, err = pgx.Connect(cctx, dsn)
				ccancel()
				if err != nil {
					conn = nil
					if lost.IsZero() {
						lost = time.Now()
					}
					if ctx.Err() == nil && time.Since(lost) > time.Minute {
						t.Errorf("writes: no connection for a minute: %v", err)
						return
					}
					time.Sleep(100 * time.Millisecond)
					continue
				}
				lost = time.Time{}
			}
			id := 1 + rng.IntN(rows+rows/10)
			var sql string
			switch k := rng.IntN(10); {
			case k < 4:
				sql = fmt.Sprintf("UPDATE %s SET n = n + 1, v = 'changed %d' WHERE id = %d", table, i, id)
			case k < 6:
				sql = fmt.Sprintf("DELETE FROM %s WHERE id = %d", table, id)
			case k < 7:
				sql = fmt.Sprintf("UPDATE %[1]s SET id = %[2]d WHERE id = %[3]d AND NOT EXISTS (SELECT 1 FROM %[1]s WHERE id = %[2]d)", table, id+1, id)
			default:
				sql = fmt.Sprintf("INSERT INTO %s VALUES (%d, 'new %d', 0) ON CONFLICT (id) DO UPDATE SET v = 'again %d'", table, id, i, i)
			}
			if _, err := conn.Exec(ctx, sql); err != nil {
				switch {
				case ctx.Err() != nil:
					return
				case conn.IsClosed():
					conn, lost = nil, time.Now()
					continue
				}
				t.Errorf("%s: %v", sql, err)
				return
			}
			n++
		}
	}()
	var once sync.Once
	stop = func() int {
		once.Do(func() { cancel(); wg.Wait() })
		return n
	}
	t.Cleanup(func() { stop() })
	return stop
}

// itemRec is an items record's key, old key and row.
type itemRec struct {
	PK     *struct{ ID *int }
	Before *struct{ ID *int } // the old key of an update that changed it
	After  *struct {
		V string
		N int
	}
}

// item decodes r as an items record, once.
func (r *jrec) item(t *testing.T) *itemRec {
	t.Helper()
	if r.it == nil {
		r.it = &itemRec{}
		if err := json.Unmarshal([]byte(r.data), r.it); err != nil {
			t.Fatalf("record %s: %v", r.data, err)
		}
		if r.it.PK == nil || r.it.PK.ID == nil {
			t.Fatalf("record without a key: %s", r.data)
		}
	}
	return r.it
}

// checkItemsStream reads items' records once the stream has caught up,
// stops d, and checks that each key's records are in order and that they
// fold to the table; it returns the records for the caller's own checks.
func (r *snapRig) checkItemsStream(t *testing.T, d *daemon) []*jrec {
	t.Helper()
	recs := parseRecords(t, r.caughtUp(t, d), "items")
	d.stop(t)
	checkKeyOrder(t, recs)
	checkFold(t, recs, itemRows(t, r.conn))
	return recs
}

// foldItems replays items' records in WAL order: id -> "v|n". A read,
// insert or update sets the row (an update whose before names another id
// moved the row from there), a delete removes it, a truncate all.
func foldItems(t *testing.T, recs []*jrec) map[int]string {
	t.Helper()
	rows := map[int]string{}
	for _, r := range walOrder(recs) {
		if r.Op == "truncate" {
			clear(rows)
			continue
		}
		it := r.item(t)
		id := *it.PK.ID
		switch r.Op {
		case "delete":
			delete(rows, id)
		case "insert", "update", "read":
			if it.Before != nil && it.Before.ID != nil && *it.Before.ID != id {
				delete(rows, *it.Before.ID)
			}
			if it.After == nil {
				t.Fatalf("record without an after: %s", r.data)
			}
			rows[id] = fmt.Sprintf("%s|%d", it.After.V, it.After.N)
		default:
			t.Fatalf("unexpected record %s", r.data)
		}
	}
	return rows
}

func itemRows(t *testing.T, conn *pgx.Conn) map[int]string {
	t.Helper()
	return tableRows(t, conn, "items")
}

// tableRows is itemRows of table, made as items is.
func tableRows(t *testing.T, conn *pgx.Conn, table string) map[int]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT id, v, n FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	var id, n int
	var v string
	if _, err := pgx.ForEachRow(rows, []any{&id, &v, &n}, func() error {
		out[id] = fmt.Sprintf("%s|%d", v, n)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkFold compares the fold of items' records with the table: no key
// missing, none left that the table does not hold, every value equal.
func checkFold(t *testing.T, recs []*jrec, table map[int]string) {
	t.Helper()
	got := foldItems(t, recs)
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 10 {
			t.Errorf(format, args...)
		}
	}
	for id, row := range table {
		if g, ok := got[id]; !ok {
			report("row %d (%s) is not in the folded stream; its records:\n%s", id, row, itemRecords(recs, id))
		} else if g != row {
			report("row %d: stream %q, table %q; its records:\n%s", id, g, row, itemRecords(recs, id))
		}
	}
	for id, g := range got {
		if _, ok := table[id]; !ok {
			report("row %d (%s) is in the folded stream, not in the table; its records:\n%s", id, g, itemRecords(recs, id))
		}
	}
	if bad > 10 {
		t.Errorf("... %d rows in all are wrong", bad)
	}
	t.Logf("the table has %d rows; %d records of it folded", len(table), len(recs))
}

var idField = regexp.MustCompile(`"id":(\d+)[,}]`)

// itemRecords lists the records naming id, in WAL order, for a failure.
func itemRecords(recs []*jrec, id int) string {
	var b strings.Builder
	for _, r := range walOrder(recs) {
		for _, m := range idField.FindAllStringSubmatch(r.data, -1) {
			if m[1] == strconv.Itoa(id) {
				b.WriteString("  " + r.data + "\n")
				break
			}
		}
	}
	return b.String()
}

// reads counts the read records of recs per id.
func reads(t *testing.T, recs []*jrec) map[int]int {
	t.Helper()
	n := map[int]int{}
	for _, r := range recs {
		if r.Op == "read" {
			n[*r.item(t).PK.ID]++
		}
	}
	return n
}

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

// (5) Keys of every kind, and a table without one (JSON publishes it, read
// by ctid): each table snapshotted (initial_only), every row in the stream
// once, as the table holds it (to_json of the row), for each plugin.
func TestSnapshotKeys(t *testing.T) {
	tables := map[string][]string{
		"text_key": {
			"CREATE TABLE text_key (k text PRIMARY KEY, v int NOT NULL)",
			`INSERT INTO text_key SELECT 'key ' || i || ' it''s "quoted", \ ' || repeat(' ', i % 3), i FROM generate_series(1, 1500) i`,
			`INSERT INTO text_key VALUES (' ', -1), ('', -2), ('a,b', -3), ('{x}', -4), ('NULL', -5), ('é ü', -6), ('"', -7), ('''', -8)`,
		},
		"uuid_key": {
			"CREATE TABLE uuid_key (id uuid PRIMARY KEY, v int NOT NULL)",
			"INSERT INTO uuid_key SELECT md5(i::text)::uuid, i FROM generate_series(1, 1500) i",
		},
		"composite_key": {
			"CREATE TABLE composite_key (a text, b int, v text, PRIMARY KEY (a, b))",
			`INSERT INTO composite_key SELECT 'group ' || (i % 7) || ' "q" ''s', i, 'value ' || i FROM generate_series(1, 1500) i`,
			`INSERT INTO composite_key VALUES ('', 0, NULL), (' ', -1, ''), ('a,b', 2147483647, 'max')`,
		},
		"numeric_key": {
			"CREATE TABLE numeric_key (id numeric PRIMARY KEY, v int NOT NULL)",
			"INSERT INTO numeric_key SELECT (i - 750) / 7.0, i FROM generate_series(1, 1500) i",
			"INSERT INTO numeric_key VALUES (1e20, -1), (0.000001, -2), (-123456789.123456789, -3), (42.500, -4)",
		},
		"no_key": {
			"CREATE TABLE no_key (a int, b text)",
			"INSERT INTO no_key SELECT i % 500, 'dup ' || (i % 500) FROM generate_series(1, 1500) i", // each row three times
			"INSERT INTO no_key VALUES (NULL, NULL)",
		},
	}
	names := []string{"text_key", "uuid_key", "composite_key", "numeric_key", "no_key"}
	for _, plugin := range []string{"test_decoding", "wal2json", "pgoutput"} {
		t.Run(plugin, func(t *testing.T) {
			t.Parallel()
			r, d := snapshotOnce(t, plugin, tables, names, 200)
			for _, n := range names {
				want := map[string]int{}
				rows, err := r.conn.Query(context.Background(), "SELECT row_to_json(t)::text FROM "+n+" t")
				if err != nil {
					t.Fatal(err)
				}
				var row string
				total := 0
				if _, err := pgx.ForEachRow(rows, []any{&row}, func() error {
					want[canonical(t, []byte(row))]++
					total++
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				got := map[string]int{}
				for _, rec := range r.waitReads(t, n, total) {
					if rec.Op != "read" {
						t.Fatalf("a record that is not a read: %s", rec.data)
					}
					after := canonical(t, rec.After)
					got[after]++
					if n == "no_key" {
						if string(rec.PK) != "null" {
							t.Errorf("a row of a table without a key has pk %s: %s", rec.PK, rec.data)
						}
						continue
					}
					// The key is the row's key columns.
					var pk, full map[string]json.RawMessage
					if err := json.Unmarshal(rec.PK, &pk); err != nil || len(pk) == 0 {
						t.Fatalf("record without a key: %s", rec.data)
					}
					_ = json.Unmarshal(rec.After, &full)
					for c, v := range pk {
						if string(full[c]) != string(v) {
							t.Errorf("pk %s = %s, the row's %s: %s", c, v, full[c], rec.data)
						}
					}
				}
				bad := 0
				for row, w := range want {
					if got[row] != w {
						if bad++; bad <= 5 {
							t.Errorf("%s: row %s is %d times in the table, %d in the stream", n, row, w, got[row])
						}
					}
				}
				for row, g := range got {
					if _, ok := want[row]; !ok {
						if bad++; bad <= 5 {
							t.Errorf("%s: row %s is %d times in the stream, not in the table", n, row, g)
						}
					}
				}
				t.Logf("%s: %d rows, %d distinct rows read", n, total, len(got))
			}
			if t.Failed() {
				t.Logf("log:\n%s", d.log())
			}
		})
	}
}

// Several tables read at once (--snapshot-workers 3), writes going on in
// each: every table's folded stream equals the table.
func TestSnapshotWorkersManyTables(t *testing.T) {
	t.Parallel()
	const rows, chunkRows = 15_000, 1500
	names := []string{"one", "two", "three", "four"}
	var stmts []string
	for _, n := range names {
		stmts = append(stmts, strings.Replace(itemsTable, "items", n, 1), strings.Replace(fillItems(rows), "items", n, 1))
	}
	r := newSnapRig(t, "wal2json", names, stmts...)
	d := startDaemon(t, r.args(t, r.ep, "initial", chunkRows, "--snapshot-workers", "3")...)
	testenv.WaitSlotStreaming(t, r.conn, r.slot)
	var stops []func() int
	for i, n := range names {
		stops = append(stops, writeTable(t, r.dsn, n, rows, uint64(10+i)))
	}
	for _, n := range names {
		r.waitDone(t, d, n)
	}
	if !strings.Contains(d.log(), "snapshot of table started") {
		t.Fatalf("no snapshot started; log:\n%s", d.log())
	}
	for _, stop := range stops {
		stop()
	}
	raw := r.caughtUp(t, d)
	d.stop(t)
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			recs := parseRecords(t, raw, n)
			checkKeyOrder(t, recs)
			checkFold(t, recs, tableRows(t, r.conn, n))
		})
	}
	if t.Failed() {
		t.Logf("log:\n%s", d.log())
	}
}

// A TRUNCATE (and the rows inserted again in its transaction) in the
// middle of a table's snapshot, writes going on: the fold (a truncate
// empties the table) equals the table.
func TestSnapshotTruncateMidSnapshot(t *testing.T) {
	t.Parallel()
	const rows, chunkRows = 40_000, 1000
	r := newSnapRig(t, "pgoutput", []string{"items"}, itemsTable, fillItems(rows))
	d := startDaemon(t, r.args(t, slowProxy(t, r.ep), "initial", chunkRows)...)
	testenv.WaitSlotStreaming(t, r.conn, r.slot)
	stop := writeItems(t, r.dsn, rows, 7)
	r.midSnapshot(t, d)
	if _, err := r.conn.PgConn().Exec(context.Background(), fmt.Sprintf(
		"BEGIN; TRUNCATE items; INSERT INTO items SELECT i, 'refilled ' || i, 7 FROM generate_series(1, %d, 3) i; COMMIT", rows)).ReadAll(); err != nil {
		t.Fatal(err)
	}
	r.waitDone(t, d, "items")
	t.Logf("%d writes", stop())
	recs := parseRecords(t, r.caughtUp(t, d), "items")
	d.stop(t)
	truncates := 0
	for _, rec := range recs {
		if rec.Op == "truncate" {
			truncates++
		}
	}
	if truncates != 1 {
		t.Errorf("%d truncates in the stream, want 1", truncates)
	}
	checkKeyOrder(t, recs)
	checkFold(t, recs, itemRows(t, r.conn))
	if t.Failed() {
		t.Logf("log:\n%s", d.log())
	}
}

// A table asked for again while its snapshot runs starts over: the fold
// equals the table, the state ends done, and rows_published counts the
// second snapshot.
func TestSnapshotRequestedAgainWhileRunning(t *testing.T) {
	t.Parallel()
	const rows, chunkRows = 40_000, 1000
	r := newSnapRig(t, "wal2json", []string{"items"}, itemsTable, fillItems(rows))
	d := startDaemon(t, r.args(t, r.ep, "never", chunkRows)...)
	testenv.WaitSlotStreaming(t, r.conn, r.slot)
	stop := writeItems(t, r.dsn, rows, 8)
	request := func() {
		t.Helper()
		if out, errOut, code := r.snapshotCommand(t, "--table", "items"); code != 0 {
			t.Fatalf("pg2kinesis snapshot --table items: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}
	request()
	r.midSnapshot(t, d)
	again := r.walLSN(t)
	request()
	s := r.waitDone(t, d, "items")
	t.Logf("%d writes; state %+v", stop(), s)
	recs := r.checkItemsStream(t, d)
	var after int64
	for _, rec := range recs {
		if rec.Op == "read" && rec.commit > again {
			after++
		}
	}
	t.Logf("%d reads placed after the second request, %d counted by the second snapshot", after, s.rows)
	if s.rows < rows*8/10 || s.rows > after {
		t.Errorf("the second snapshot counts %d rows: want about the table's %d, at most the %d reads after the request", s.rows, rows, after)
	}
	if t.Failed() {
		t.Logf("log:\n%s", d.log())
	}
}

// Keys whose text must round-trip through the keyset cursor: timestamps
// with a time zone, floats with digits a default print would round,
// bytea, dates, a key that is a unique index (the replica identity), not
// the primary key. Each row has a distinct v: every v of the table is
// read exactly once, with chunks of 100 rows, for each plugin.
func TestSnapshotCursorKeys(t *testing.T) {
	tables := map[string][]string{
		"ts_key": {
			"CREATE TABLE ts_key (k timestamptz PRIMARY KEY, v int NOT NULL UNIQUE)",
			"INSERT INTO ts_key SELECT '2026-03-29 00:59:59.999999+00'::timestamptz + i * interval '1.000001 second', i FROM generate_series(1, 1000) i",
		},
		"float_key": {
			"CREATE TABLE float_key (k float8 PRIMARY KEY, v int NOT NULL UNIQUE)",
			"INSERT INTO float_key SELECT 0.1 + i * 1e-15, i FROM generate_series(1, 1000) i",
			"INSERT INTO float_key VALUES ('Infinity', -1), ('-Infinity', -2), (1e308, -3), (-0.3, -4)",
		},
		"bytea_key": {
			"CREATE TABLE bytea_key (k bytea PRIMARY KEY, v int NOT NULL UNIQUE)",
			"INSERT INTO bytea_key SELECT decode(md5(i::text), 'hex') || '\\x00'::bytea, i FROM generate_series(1, 1000) i",
		},
		"date_key": {
			"CREATE TABLE date_key (k date PRIMARY KEY, v int NOT NULL UNIQUE)",
			"INSERT INTO date_key SELECT date '1999-12-01' + i, i FROM generate_series(1, 1000) i",
		},
		"index_key": {
			"CREATE TABLE index_key (id int PRIMARY KEY, u text NOT NULL, v int NOT NULL UNIQUE)",
			"CREATE UNIQUE INDEX index_key_u ON index_key (u)",
			"ALTER TABLE index_key REPLICA IDENTITY USING INDEX index_key_u",
			"INSERT INTO index_key SELECT i, 'u ' || (1000 - i) || ' ''x''', i FROM generate_series(1, 1000) i",
		},
	}
	names := []string{"ts_key", "float_key", "bytea_key", "date_key", "index_key"}
	for _, plugin := range []string{"test_decoding", "wal2json", "pgoutput"} {
		t.Run(plugin, func(t *testing.T) {
			t.Parallel()
			r, d := snapshotOnce(t, plugin, tables, names, 100)
			for _, n := range names {
				var total int
				if err := r.conn.QueryRow(context.Background(), "SELECT count(*) FROM "+n).Scan(&total); err != nil {
					t.Fatal(err)
				}
				seen := map[int]int{}
				for _, rec := range r.waitReads(t, n, total) {
					var row struct{ V *int }
					if err := json.Unmarshal(rec.After, &row); err != nil || row.V == nil {
						t.Fatalf("record %s: %v", rec.data, err)
					}
					seen[*row.V]++
				}
				bad := 0
				for v, c := range seen {
					if c != 1 {
						if bad++; bad <= 5 {
							t.Errorf("%s: the row with v = %d read %d times", n, v, c)
						}
					}
				}
				if len(seen) != total {
					t.Errorf("%s: %d rows read, the table has %d", n, len(seen), total)
				}
				s, _ := r.state(t, n)
				t.Logf("%s: %d rows, %d read; state %+v", n, total, len(seen), s)
			}
			if t.Failed() {
				t.Logf("log:\n%s", d.log())
			}
		})
	}
}

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
	mixed := 0
	for _, rec := range parseRecords(t, recs, "Mixed Case") {
		if rec.Op == "read" {
			mixed++
		}
	}
	// The second request of "Mixed Case" may have started it over: 500
	// or 1000 reads.
	if mixed != 500 && mixed != 1000 {
		t.Errorf("%d reads of \"Mixed Case\", want 500 (or 1000 if the second request started it over)", mixed)
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
