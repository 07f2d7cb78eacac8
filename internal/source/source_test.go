package source

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg2kinesis/pg2kinesis/internal/checkpoint"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// recorder is a Handler that passes every message to a channel and, when
// autoFlush is set, acknowledges it at once as a synchronous sink would.
type recorder struct {
	src       *Source
	autoFlush bool
	msgs      chan message
	// keepalives by kind: the server's own (caught up), and the others
	caughtUp, replies atomic.Int64
}

type message struct {
	lsn  pglogrepl.LSN
	data string
}

func (r *recorder) HandleData(ctx context.Context, m pglogrepl.XLogData) error {
	// Flush first: a test that has seen a message may rely on its flush.
	if r.autoFlush {
		r.src.cfg.Position.Raise(m.WALStart)
	}
	select {
	case r.msgs <- message{lsn: m.WALStart, data: string(m.WALData)}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *recorder) HandleKeepalive(_ context.Context, walEnd pglogrepl.LSN, caughtUp bool) error {
	if caughtUp {
		r.caughtUp.Add(1)
	} else {
		r.replies.Add(1)
	}
	if r.autoFlush {
		r.src.cfg.Position.Raise(walEnd)
	}
	return nil
}

func (r *recorder) Drain(context.Context) error { return nil }

// next returns the next message containing want, failing after timeout.
func (r *recorder) next(t *testing.T, want string, timeout time.Duration) message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-r.msgs:
			if strings.Contains(m.data, want) {
				return m
			}
		case <-deadline:
			t.Fatalf("no message containing %q within %s", want, timeout)
		}
	}
}

type running struct {
	src    *Source
	rec    *recorder
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returns
	err    error         // Run's result, set before done is closed
}

// stop cancels the source and returns Run's result.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of cancellation")
		return nil
	}
}

func testConfig(t *testing.T, dsn, slot string, plugin decode.Plugin) Config {
	t.Helper()
	conn, err := pgconn.ParseConfig(dsn + " replication=database")
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Conn: conn, Slot: slot, Plugin: plugin,
		Position:       checkpoint.New(0), // as the pipeline wires it
		StatusInterval: 100 * time.Millisecond,
		StandbyRetry:   100 * time.Millisecond,
		MaxBackoff:     time.Second,
	}
}

func start(t *testing.T, cfg Config, autoFlush bool) *running {
	t.Helper()
	src := New(cfg)
	rec := &recorder{src: src, autoFlush: autoFlush, msgs: make(chan message, 100000)}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{src: src, rec: rec, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = src.Run(ctx, rec)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// runOnce runs a source expected to fail before streaming.
func runOnce(t *testing.T, cfg Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src := New(cfg)
	return src.Run(ctx, &recorder{src: src, msgs: make(chan message, 1000)})
}

type slotRow struct {
	plugin    string
	active    bool
	confirmed pglogrepl.LSN
}

func readSlot(t *testing.T, conn *pgx.Conn, slot string) (slotRow, bool) {
	t.Helper()
	var r slotRow
	var lsn string
	err := conn.QueryRow(context.Background(),
		"SELECT plugin, active, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).
		Scan(&r.plugin, &r.active, &lsn)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false
	}
	if err != nil {
		t.Fatal(err)
	}
	if r.confirmed, err = pglogrepl.ParseLSN(lsn); err != nil {
		t.Fatal(err)
	}
	return r, true
}

// eventually polls cond every 50ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func exec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func waitActive(t *testing.T, conn *pgx.Conn, slot string) {
	t.Helper()
	testenv.WaitSlotStreaming(t, conn, slot)
}
