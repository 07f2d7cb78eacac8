package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// daemon is a running pg2kinesis process.
type daemon struct {
	cmd    *exec.Cmd
	stderr *testenv.LogBuffer
	done   chan error
}

func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), testenv.AWSEnv()...)
	d := &daemon{cmd: cmd, stderr: &testenv.LogBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return d
}

func (d *daemon) log() string { return d.stderr.String() }

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
	stop func() // stops reading and waits until the reader returned
}

func readStream(t *testing.T, endpoint, stream string) *streamReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r := &streamReader{stop: sync.OnceFunc(func() { cancel(); <-done })}
	t.Cleanup(r.stop)
	go func() {
		defer close(done)
		_, err := kinesis.Tail(ctx, testenv.KinesisClient(t, endpoint), kinesis.ByName(stream), false, func(rec kinesis.TailRecord) error {
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
	// Slot names are global to the server, which other packages and
	// clones share: a name of the test's own.
	slot := testenv.Name(t)
	d := startDaemon(t, append(connArgs(t, dsn), "-s", slot, "--create-slot", "--kinesis-endpoint", ep, "-k", stream,
		"--full-change", "--partition-key", "pk", "--status-interval", "200ms", "--flush-interval", "50ms")...)
	waitSlotActive(t, conn, slot)
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

	checkStream(t, recs, want)
}

func waitSlotActive(t *testing.T, conn *pgx.Conn, slot string) {
	t.Helper()
	testenv.WaitSlotStreaming(t, conn, slot)
}
