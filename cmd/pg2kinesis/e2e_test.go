package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv/kinesisproxy"
)

// daemon is a running pg2kinesis process.
type daemon struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), testenv.AWSEnv()...)
	d := &daemon{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = &lockedWriter{w: d.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return d
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (d *daemon) log() string {
	lw := d.cmd.Stderr.(*lockedWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.String()
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("pg2kinesis exited with %v after SIGTERM; log:\n%s", err, d.log())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("pg2kinesis did not stop within 30s of SIGTERM; log:\n%s", d.log())
	}
}

// streamReader collects the stream's user records in the background.
type streamReader struct {
	mu   sync.Mutex
	recs []kinesis.TailRecord
}

func readStream(t *testing.T, endpoint, stream string) *streamReader {
	t.Helper()
	r := &streamReader{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		err := kinesis.Tail(ctx, testenv.KinesisClient(t, endpoint), stream, false, func(rec kinesis.TailRecord) error {
			r.mu.Lock()
			rec.Data = append([]byte(nil), rec.Data...)
			r.recs = append(r.recs, rec)
			r.mu.Unlock()
			return nil
		})
		if err != nil {
			t.Errorf("tail: %v", err)
		}
	}()
	return r
}

func (r *streamReader) snapshot() []kinesis.TailRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]kinesis.TailRecord(nil), r.recs...)
}

// waitDistinct waits until the stream holds want distinct records.
func (r *streamReader) waitDistinct(t *testing.T, want int, timeout time.Duration, d *daemon) []kinesis.TailRecord {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		recs := r.snapshot()
		distinct := map[string]bool{}
		for _, rec := range recs {
			distinct[string(rec.Data)] = true
		}
		if len(distinct) >= want {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream holds %d distinct records after %s, want %d; log:\n%s", len(distinct), timeout, want, d.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var pkeyField = regexp.MustCompile(`"columnvalues": \[(\d+), (\d+)\]|"keyvalues": \[(\d+)`)

// Several tables, transactions of inserts, updates and deletes, 4 shards:
// every change arrives, and for every row the changes arrive in commit
// order.
func TestEndToEndOrderPerRow(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	tables := []string{"alpha", "beta", "gamma"}
	for _, tbl := range tables {
		if _, err := conn.Exec(t.Context(), fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v int)", tbl)); err != nil {
			t.Fatal(err)
		}
	}
	stream := testenv.Stream(t, testenv.KinesisClient(t, ep), 4)
	d := startDaemon(t, append(connArgs(t, dsn), "--create-slot", "--kinesis-endpoint", ep, "-k", stream,
		"--full-change", "--partition-key", "pk", "--status-interval", "200ms", "--flush-interval", "50ms")...)
	waitSlotActive(t, conn, "pg2kinesis")
	reader := readStream(t, ep, stream)

	// want[table:id] is the sequence of v values the row's changes carry,
	// in commit order; a delete is -1.
	want := map[string][]int{}
	exists := map[string]bool{}
	rng := rand.New(rand.NewPCG(3, 4))
	total, v := 0, 0
	for txn := 0; txn < 150; txn++ {
		tx, err := conn.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for op := 0; op < 1+rng.IntN(6); op++ {
			tbl := tables[rng.IntN(len(tables))]
			id := rng.IntN(30)
			key := fmt.Sprintf("%s:%d", tbl, id)
			v++
			var sql string
			switch {
			case !exists[key]:
				sql = fmt.Sprintf("INSERT INTO %s VALUES (%d, %d)", tbl, id, v)
				exists[key] = true
				want[key] = append(want[key], v)
			case rng.IntN(4) == 0:
				sql = fmt.Sprintf("DELETE FROM %s WHERE id = %d", tbl, id)
				exists[key] = false
				want[key] = append(want[key], -1)
			default:
				sql = fmt.Sprintf("UPDATE %s SET v = %d WHERE id = %d", tbl, v, id)
				want[key] = append(want[key], v)
			}
			if _, err := tx.Exec(t.Context(), sql); err != nil {
				t.Fatal(err)
			}
			total++
		}
		if err := tx.Commit(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	recs := reader.waitDistinct(t, total, 60*time.Second, d)
	d.stop(t)

	got := map[string][]int{}
	seen := map[string]bool{}
	for _, rec := range recs {
		if seen[string(rec.Data)] {
			continue // a re-send
		}
		seen[string(rec.Data)] = true
		table := regexp.MustCompile(`"table": "(\w+)"`).FindSubmatch(rec.Data)
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
			got[key] = append(got[key], -1)
		}
	}
	for key, w := range want {
		if fmt.Sprint(got[key]) != fmt.Sprint(w) {
			t.Errorf("row %s: changes arrived as %v, committed as %v", key, got[key], w)
		}
	}
	t.Logf("%d changes in %d transactions; %d records read, %d distinct", total, 150, len(recs), len(seen))
}

func waitSlotActive(t *testing.T, conn *pgx.Conn, slot string) {
	t.Helper()
	testenv.WaitSlotStreaming(t, conn, slot)
}

// kill -9 in the middle of a 100,000-row workload loses nothing: after a
// restart every row is in the stream at least once.
func TestKillNineLosesNothing(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	if _, err := conn.Exec(t.Context(), "CREATE TABLE items (id int PRIMARY KEY, note text)"); err != nil {
		t.Fatal(err)
	}
	stream := testenv.Stream(t, testenv.KinesisClient(t, ep), 2)
	args := append(connArgs(t, dsn), "--create-slot", "--kinesis-endpoint", ep, "-k", stream, "-f", "CSV", "--status-interval", "100ms")
	d := startDaemon(t, args...)
	waitSlotActive(t, conn, "pg2kinesis")
	reader := readStream(t, ep, stream)

	const rows, perTxn = 100000, 1000
	load := make(chan error, 1)
	go func() {
		for i := 0; i < rows; i += perTxn {
			_, err := conn.Exec(context.Background(),
				"INSERT INTO items SELECT g, 'row ' || g FROM generate_series($1::int, $2::int) g", i+1, i+perTxn)
			if err != nil {
				load <- err
				return
			}
		}
		load <- nil
	}()
	// Kill once a part of the workload is in the stream.
	waitFor(t, 60*time.Second, "a third of the rows in the stream", func() bool { return len(reader.snapshot()) > rows/3 })
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.done
	before := len(reader.snapshot())
	if err := <-load; err != nil {
		t.Fatal(err)
	}
	d = startDaemon(t, args...)
	recs := reader.waitDistinct(t, rows, 120*time.Second, d)
	d.stop(t)

	ids := map[string]int{}
	for _, rec := range recs {
		f := strings.Split(string(rec.Data), ",")
		ids[f[len(f)-1]]++
	}
	for i := 1; i <= rows; i++ {
		if ids[fmt.Sprint(i)] == 0 {
			t.Fatalf("row %d is not in the stream", i)
		}
	}
	t.Logf("killed with %d records in the stream; %d records for %d rows: %d re-sent", before, len(recs), rows, len(recs)-rows)
}

// While Kinesis takes nothing (every call's connection is dropped), the
// slot does not move past the changes waiting to be delivered; once
// Kinesis is back they arrive and the slot moves on.
func TestSlotWaitsForKinesis(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	if _, err := conn.Exec(t.Context(), "CREATE TABLE items (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	stream := testenv.Stream(t, testenv.KinesisClient(t, ep), 2)
	proxy := kinesisproxy.Start(t, ep)
	var down atomic.Bool
	down.Store(true)
	proxy.Plan = func(int) kinesisproxy.Fault {
		if down.Load() {
			return kinesisproxy.DropBefore
		}
		return kinesisproxy.Pass
	}
	d := startDaemon(t, append(connArgs(t, dsn), "--create-slot", "--kinesis-endpoint", proxy.URL, "-k", stream,
		"-f", "CSV", "--status-interval", "100ms", "--max-backoff", "500ms")...)
	waitSlotActive(t, conn, "pg2kinesis")
	// The slot may pass the inserts of a transaction that is not delivered
	// yet (Postgres re-sends a transaction whole when its commit is past the
	// slot), but never its commit, which ends before afterCommit. The insert
	// position, not pg_current_wal_lsn: with synchronous_commit=off the
	// written position can lag behind the commit record.
	if _, err := conn.Exec(t.Context(), "INSERT INTO items SELECT generate_series(1, 100)"); err != nil {
		t.Fatal(err)
	}
	var afterCommit string
	if err := conn.QueryRow(t.Context(), "SELECT pg_current_wal_insert_lsn()::text").Scan(&afterCommit); err != nil {
		t.Fatal(err)
	}
	passed := func() bool {
		var ok bool
		if err := conn.QueryRow(t.Context(),
			"SELECT confirmed_flush_lsn >= $1::pg_lsn FROM pg_replication_slots WHERE slot_name = 'pg2kinesis'", afterCommit).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	waitFor(t, 10*time.Second, "calls to reach the broken Kinesis", func() bool { return proxy.Stats().DroppedBefore >= 3 })
	time.Sleep(time.Second) // ten status intervals
	if passed() {
		t.Fatal("the slot moved past changes Kinesis has not stored")
	}
	down.Store(false)
	reader := readStream(t, ep, stream)
	reader.waitDistinct(t, 100, 30*time.Second, d)
	waitFor(t, 10*time.Second, "the slot to move past the delivered changes", passed)
	d.stop(t)
	t.Logf("proxy: %+v", proxy.Stats())
}
