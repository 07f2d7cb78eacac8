package slotwatch

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// run starts w and returns a function that stops it and waits (once,
// however often it is called).
func run(t *testing.T, w *Watcher) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Against a slot nobody reads, the heartbeats are logical messages of the
// slot's database with our prefix, and the sampled lag grows with them.
func TestHeartbeatAndLag(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	slot := testenv.Name(t)
	if _, err := conn.Exec(t.Context(), "SELECT pg_create_logical_replication_slot($1, 'test_decoding')", slot); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var samples []Sample
	beats := 0
	w := New(Config{
		Connect:        func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, dsn) },
		Slot:           slot,
		SampleInterval: 50 * time.Millisecond,
		Heartbeat:      50 * time.Millisecond,
		Sampled:        func(s Sample) { mu.Lock(); samples = append(samples, s); mu.Unlock() },
		OnHeartbeat:    func() { mu.Lock(); beats++; mu.Unlock() },
	})
	if w.Lag() != -1 {
		t.Fatalf("lag before any sample: %d, want -1", w.Lag())
	}
	stop := run(t, w)
	waitFor(t, "three heartbeats and a sample after them", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return beats >= 3 && len(samples) > 0 && samples[len(samples)-1].Lag > 0
	})
	stop()

	mu.Lock()
	last := samples[len(samples)-1]
	mu.Unlock()
	if last.Retained < last.Lag || w.Lag() != last.Lag {
		t.Fatalf("last sample %+v, Lag() %d: retained WAL cannot be less than the lag", last, w.Lag())
	}
	// A non-transactional message waits for the WAL writer's next flush
	// (wal_writer_delay) before a slot can decode it.
	waitFor(t, "the slot to decode three heartbeat messages", func() bool {
		var messages int
		err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_logical_slot_peek_changes($1, NULL, NULL)
			WHERE data LIKE 'message: transactional: 0 prefix: pg2kinesis, sz: %'`, slot).Scan(&messages)
		if err != nil {
			t.Fatal(err)
		}
		return messages >= 3
	})
}

// A missing slot and a failing connection are logged once, not fatal, and
// make the lag unknown; the watcher recovers when they are fixed.
func TestFailuresAreLoggedOnceAndRetried(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	slot := testenv.Name(t)
	logs := &testenv.LogBuffer{}
	var mu sync.Mutex
	var samples []Sample
	fail := true
	w := New(Config{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			mu.Lock()
			f := fail
			mu.Unlock()
			if f {
				return nil, errors.New("connection refused")
			}
			return pgx.Connect(ctx, dsn)
		},
		Slot:           slot,
		SampleInterval: 20 * time.Millisecond,
		Sampled:        func(s Sample) { mu.Lock(); samples = append(samples, s); mu.Unlock() },
		Logger:         slog.New(slog.NewTextHandler(logs, nil)),
	})
	stop := run(t, w)
	defer stop()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(samples) }
	waitFor(t, "failed samples", func() bool { return count() >= 3 })
	if n := strings.Count(logs.String(), "cannot sample the slot's lag"); n != 1 || !strings.Contains(logs.String(), "connection refused") {
		t.Fatalf("want one warning naming the cause, got:\n%s", logs.String())
	}
	if w.Lag() != -1 {
		t.Fatalf("lag %d without a connection, want -1", w.Lag())
	}
	if _, err := conn.Exec(t.Context(), "SELECT pg_create_logical_replication_slot($1, 'test_decoding')", slot); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	waitFor(t, "the recovery", func() bool { return strings.Contains(logs.String(), "slot watcher works again") })
	waitFor(t, "a sample of the slot", func() bool { return w.Lag() >= 0 })

	if _, err := conn.Exec(t.Context(), "SELECT pg_drop_replication_slot($1)", slot); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the missing slot's warning", func() bool {
		return strings.Contains(logs.String(), `replication slot \"`+slot+`\" does not exist`)
	})
	waitFor(t, "the lag to be unknown", func() bool { return w.Lag() == -1 })
	stop()
	mu.Lock()
	defer mu.Unlock()
	for _, s := range samples {
		if (s.Lag == -1) != (s.Retained == -1) {
			t.Fatalf("sample %+v: both figures are known or neither", s)
		}
	}
}

// A heartbeat that the server refuses (EXECUTE revoked) is logged once and
// does not cost the lag samples their connection; a standby (not Active)
// writes none.
func TestHeartbeatRefusedAndStandby(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	slot, role := testenv.Name(t), testenv.Name(t)
	for _, sql := range []string{
		"SELECT pg_create_logical_replication_slot('" + slot + "', 'test_decoding')",
		"CREATE ROLE " + role + " LOGIN",
		// Every overload: PostgreSQL 17 added one with a flush argument.
		`DO $$ DECLARE f regprocedure; BEGIN
			FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE proname = 'pg_logical_emit_message' LOOP
				EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
			END LOOP; END $$`,
	} {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	t.Cleanup(func() {
		_, _ = testenv.Connect(t, testenv.AdminDSN()).Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
	})
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User = role
	var mu sync.Mutex
	connects, samples, beats := 0, 0, 0
	var active atomic.Bool
	logs := &testenv.LogBuffer{}
	w := New(Config{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			mu.Lock()
			connects++
			mu.Unlock()
			return pgx.ConnectConfig(ctx, cfg)
		},
		Slot:           slot,
		SampleInterval: 20 * time.Millisecond,
		Heartbeat:      20 * time.Millisecond,
		Active:         active.Load,
		Sampled:        func(Sample) { mu.Lock(); samples++; mu.Unlock() },
		OnHeartbeat:    func() { mu.Lock(); beats++; mu.Unlock() },
		Logger:         slog.New(slog.NewTextHandler(logs, nil)),
	})
	stop := run(t, w)
	defer stop()
	waitFor(t, "samples as a standby", func() bool { mu.Lock(); defer mu.Unlock(); return samples >= 5 })
	if strings.Contains(logs.String(), "heartbeat") {
		t.Fatalf("a standby tried to write heartbeats:\n%s", logs.String())
	}
	active.Store(true)
	waitFor(t, "the refused heartbeat's warning", func() bool { return strings.Contains(logs.String(), "cannot write a heartbeat") })
	mu.Lock()
	before := samples
	mu.Unlock()
	waitFor(t, "more samples", func() bool { mu.Lock(); defer mu.Unlock(); return samples >= before+5 })
	stop()
	if n := strings.Count(logs.String(), "cannot write a heartbeat"); n != 1 || !strings.Contains(logs.String(), "permission denied") {
		t.Fatalf("want one warning naming the refusal, got:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "cannot sample") || connects != 1 || beats != 0 || w.Lag() < 0 {
		t.Fatalf("samples suffered from the refused heartbeat: %d connections, %d heartbeats, lag %d; log:\n%s", connects, beats, w.Lag(), logs.String())
	}
}
