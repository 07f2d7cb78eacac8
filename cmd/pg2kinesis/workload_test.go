package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis"
)

// workload commits small transactions of inserts, updates and deletes to
// a few keyed tables from one connection, and remembers, for every row, the
// changes that committed, in commit order. It survives a Postgres restart:
// when a connection fails it reconnects and asks the server whether the
// transaction committed (txid_status), so that want never holds a change
// that did not commit, nor misses one that did.
type workload struct {
	dsn    string
	tables []string
	keys   int
	rng    *rand.Rand

	mu      sync.Mutex
	want    map[string][]int // "table:id" → the v of each change; -1 is a delete
	exists  map[string]bool
	txns    int
	changes int
	lastLSN string // WAL insert position after the latest commit

	stop chan struct{}
	done chan error
}

// newWorkload creates the tables (before pg2kinesis starts, so that its key
// cache knows them at once).
func newWorkload(t *testing.T, dsn string) *workload {
	t.Helper()
	w := &workload{dsn: dsn, tables: []string{"alpha", "beta"}, keys: 40, rng: rand.New(rand.NewPCG(1, 2)),
		want: map[string][]int{}, exists: map[string]bool{}, stop: make(chan struct{}), done: make(chan error, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, tbl := range w.tables {
		if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v int NOT NULL)", tbl)); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// op is one statement of a transaction and its effect on want.
type op struct {
	sql    string
	key    []string
	values []int
	exists []bool
}

// start runs transactions, about 300 a second, until finish.
func (w *workload) start(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { w.halt() })
	go func() { w.done <- w.loop() }()
}

func (w *workload) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
}

func (w *workload) loop() error {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	tick := time.NewTicker(3 * time.Millisecond) // a steady rate, not a wait
	defer tick.Stop()
	v := 0
	for {
		select {
		case <-w.stop:
			return nil
		case <-tick.C:
		}
		if conn == nil {
			var err error
			if conn, err = w.reconnect(); err != nil {
				return err
			}
		}
		ops := w.plan(&v)
		if err := w.commit(conn, ops); err != nil {
			conn.Close(context.Background())
			conn = nil
			if err := w.resolve(err, ops); err != nil {
				return err
			}
		}
	}
}

// plan picks the next transaction: usually a few single-row changes,
// sometimes an update of many rows at once. v numbers the changes.
func (w *workload) plan(v *int) []op {
	w.mu.Lock()
	defer w.mu.Unlock()
	exists := map[string]bool{}
	have := func(k string) bool {
		if e, ok := exists[k]; ok {
			return e
		}
		return w.exists[k]
	}
	var ops []op
	if w.rng.IntN(20) == 0 {
		tbl := w.tables[w.rng.IntN(len(w.tables))]
		o := op{sql: fmt.Sprintf("UPDATE %s SET v = %d + id", tbl, *v)}
		for id := 0; id < w.keys; id++ {
			if k := fmt.Sprintf("%s:%d", tbl, id); have(k) {
				o.key, o.values, o.exists = append(o.key, k), append(o.values, *v+id), append(o.exists, true)
			}
		}
		*v += w.keys
		return append(ops, o)
	}
	// A row is deleted at most once per transaction: a second delete of
	// it would make a record identical to the first, which checkStream
	// takes for a re-send. (Inserts and updates carry a new v each.)
	deleted := map[string]bool{}
	for n := 1 + w.rng.IntN(5); n > 0; n-- {
		tbl := w.tables[w.rng.IntN(len(w.tables))]
		id := w.rng.IntN(w.keys)
		k := fmt.Sprintf("%s:%d", tbl, id)
		*v++
		var o op
		switch {
		case !have(k):
			o = op{sql: fmt.Sprintf("INSERT INTO %s VALUES (%d, %d)", tbl, id, *v), values: []int{*v}, exists: []bool{true}}
		case w.rng.IntN(4) == 0 && !deleted[k]:
			o = op{sql: fmt.Sprintf("DELETE FROM %s WHERE id = %d", tbl, id), values: []int{-1}, exists: []bool{false}}
			deleted[k] = true
		default:
			o = op{sql: fmt.Sprintf("UPDATE %s SET v = %d WHERE id = %d", tbl, *v, id), values: []int{*v}, exists: []bool{true}}
		}
		o.key = []string{k}
		exists[k] = o.exists[0]
		ops = append(ops, o)
	}
	return ops
}

// commitError is a failed transaction, with its xid for resolve.
type commitError struct {
	xid string // "" when the transaction had no xid yet: it did not commit
	err error
}

func (e *commitError) Error() string { return e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// commit runs one transaction in two round trips and records it.
func (w *workload) commit(conn *pgx.Conn, ops []op) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var xid string
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		return &commitError{err: err}
	}
	if err := conn.QueryRow(ctx, "SELECT txid_current()::text").Scan(&xid); err != nil {
		return &commitError{err: err}
	}
	stmts := make([]string, 0, len(ops)+2)
	for _, o := range ops {
		stmts = append(stmts, o.sql)
	}
	// The simple protocol sends the changes, the commit and the position
	// after it in one round trip; the SELECT runs after the COMMIT.
	stmts = append(stmts, "COMMIT", "SELECT pg_current_wal_insert_lsn()::text")
	results, err := conn.PgConn().Exec(ctx, strings.Join(stmts, "; ")).ReadAll()
	if err != nil {
		return &commitError{xid: xid, err: err}
	}
	lsn := string(results[len(results)-1].Rows[0][0])
	w.apply(ops, lsn)
	return nil
}

func (w *workload) apply(ops []op, lsn string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range ops {
		for i, k := range o.key {
			w.want[k] = append(w.want[k], o.values[i])
			w.exists[k] = o.exists[i]
			w.changes++
		}
	}
	w.txns++
	if lsn != "" {
		w.lastLSN = lsn
	}
}

// resolve decides, after a failed transaction, whether it committed.
func (w *workload) resolve(err error, ops []op) error {
	ce, _ := err.(*commitError)
	if ce == nil || ce.xid == "" {
		return nil
	}
	conn, rerr := w.reconnect()
	if rerr != nil {
		return rerr
	}
	defer conn.Close(context.Background())
	// A backend that lost its client may still be finishing the commit.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var status *string
		// txid_status, not pg_xact_status: PostgreSQL 12 has no xid8.
		if err := conn.QueryRow(context.Background(), "SELECT txid_status($1::bigint)", ce.xid).Scan(&status); err != nil {
			// A standby promoted since never saw the transaction: it did
			// not commit there, whatever the old primary did with it.
			if strings.Contains(err.Error(), "is in the future") {
				return nil
			}
			return fmt.Errorf("workload: status of xid %s after %v: %w", ce.xid, ce.err, err)
		}
		switch {
		case status != nil && *status == "committed":
			w.apply(ops, "")
			return nil
		case status == nil || *status != "in progress":
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("workload: xid %s still in progress 30s after %v", ce.xid, ce.err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reconnect waits up to a minute for the server (it may be restarting).
func (w *workload) reconnect() (*pgx.Conn, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, w.dsn)
		cancel()
		if err == nil {
			return conn, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("workload: reconnect: %w", err)
		}
		select {
		case <-w.stop:
			return nil, fmt.Errorf("workload: stopped while reconnecting: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// progress is how many transactions and changes have committed.
func (w *workload) progress() (txns, changes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.txns, w.changes
}

// waitTxns waits until n more transactions commit than when it was called.
func (w *workload) waitTxns(t *testing.T, n int) {
	t.Helper()
	base, _ := w.progress()
	waitFor(t, 60*time.Second, fmt.Sprintf("%d more workload transactions", n), func() bool {
		txns, _ := w.progress()
		return txns >= base+n
	})
}

// lastCommitLSN is the WAL insert position after the latest commit.
func (w *workload) lastCommitLSN() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastLSN
}

// finish stops the workload and returns what committed.
func (w *workload) finish(t *testing.T) (want map[string][]int, changes int) {
	t.Helper()
	w.halt()
	if err := <-w.done; err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("workload: %d transactions, %d changes", w.txns, w.changes)
	return w.want, w.changes
}

var (
	tableField = regexp.MustCompile(`"table": "(\w+)"`)
	pkeyField  = regexp.MustCompile(`"columnvalues": \[(\d+), (-?\d+)\]|"keyvalues": \[(\d+)`)
)

// checkStream is the check of every delivery test: recs (full-change
// records, --partition-key pk) hold every committed change at least once,
// and for every row the first copies of its changes are in commit order.
// Re-sent copies are allowed anywhere after their first; a missing,
// extra or reordered change fails the test.
func checkStream(t testing.TB, recs []kinesis.TailRecord, want map[string][]int) {
	t.Helper()
	got := map[string][]int{}
	seen := map[string]bool{}
	for _, rec := range recs {
		if seen[string(rec.Data)] {
			continue // a re-send
		}
		seen[string(rec.Data)] = true
		table := tableField.FindSubmatch(rec.Data)
		m := pkeyField.FindSubmatch(rec.Data)
		if table == nil || m == nil {
			t.Fatalf("unexpected record %s", rec.Data)
		}
		if len(m[1]) > 0 {
			key := fmt.Sprintf("%s:%s", table[1], m[1])
			if rec.PartitionKey != "public."+key {
				t.Fatalf("record %s has partition key %q, want public.%s", rec.Data, rec.PartitionKey, key)
			}
			var val int
			fmt.Sscan(string(m[2]), &val)
			got[key] = append(got[key], val)
		} else {
			key := fmt.Sprintf("%s:%s", table[1], m[3])
			if rec.PartitionKey != "public."+key {
				t.Fatalf("record %s has partition key %q, want public.%s", rec.Data, rec.PartitionKey, key)
			}
			got[key] = append(got[key], -1)
		}
	}
	bad := 0
	for key, w := range want {
		if i := firstDifference(got[key], w); i >= 0 {
			bad++
			if bad <= 5 {
				t.Errorf("row %s: %d changes committed, %d arrived; they differ from change %d on: committed %v, arrived %v",
					key, len(w), len(got[key]), i+1, head(w[i:]), head(got[key][min(i, len(got[key])):]))
			}
		}
	}
	for key, g := range got {
		if _, ok := want[key]; !ok {
			t.Errorf("row %s: changes %v arrived but none committed", key, g)
		}
	}
	if bad > 5 {
		t.Errorf("... %d rows in all are wrong", bad)
	}
	t.Logf("%d records read, %d distinct", len(recs), len(seen))
}

// firstDifference is the index where a and b first differ, -1 if equal.
func firstDifference(a, b []int) int {
	for i := range max(len(a), len(b)) {
		if i >= len(a) || i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return -1
}

// head is the first few values, for a readable failure.
func head(v []int) string {
	if len(v) > 5 {
		return fmt.Sprint(v[:5])[:len(fmt.Sprint(v[:5]))-1] + " ...]"
	}
	return fmt.Sprint(v)
}
