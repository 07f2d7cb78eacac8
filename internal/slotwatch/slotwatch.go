// Package slotwatch looks at the replication slot from a normal
// connection, beside the replication stream: it samples how far the slot
// is behind the server's WAL, and writes the heartbeat messages of
// --heartbeat-interval. Neither is essential to delivery, so its failures
// are logged and retried, never fatal.
package slotwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Config says what to watch and how often.
type Config struct {
	// Connect opens a normal connection to the slot's database.
	// HeartbeatConnect, if set, opens the one heartbeats are written on:
	// the primary's, when the slot is on a standby, which cannot write.
	Connect          func(ctx context.Context) (*pgx.Conn, error)
	HeartbeatConnect func(ctx context.Context) (*pgx.Conn, error)
	Slot             string
	// SampleInterval is how often the lag is sampled (default 10s).
	SampleInterval time.Duration
	// Heartbeat is how often a heartbeat message is written; 0 writes none.
	// Active, if set, says whether this process streams the slot: a
	// heartbeat is written only then, so that a standby stays quiet.
	Heartbeat time.Duration
	Active    func() bool
	// Ready, if set, holds the samples back until it is closed (the slot
	// may not exist before), while heartbeats are written from the start.
	Ready <-chan struct{}
	// Sampled receives each sample; OnHeartbeat is called after each
	// heartbeat written. Either may be nil.
	Sampled     func(Sample)
	OnHeartbeat func()
	Logger      *slog.Logger
}

// Sample is the slot's position against the server's, in bytes of WAL.
type Sample struct {
	// Lag is the server's current WAL position minus the slot's
	// confirmed_flush_lsn: what the slot has still to confirm.
	Lag int64
	// Retained is the server's current WAL position minus the slot's
	// restart_lsn: WAL the server keeps on disk for the slot.
	Retained int64
}

// HeartbeatPrefix is the prefix of the heartbeat messages. The plugins
// decode them as logical messages, which are never published.
const HeartbeatPrefix = "pg2kinesis"

// Watcher samples and writes heartbeats until its context ends.
type Watcher struct {
	cfg    Config
	log    *slog.Logger
	conn   link            // to the slot's server
	beat   link            // where heartbeats are written: conn, or the primary's
	failed map[string]bool // by operation: its last attempt failed, so log its recovery
	// beatChecked: the heartbeat's own connection was compared with the
	// slot's (see beatTargetOK); beatWrong: it reaches another database.
	beatChecked, beatWrong bool

	lag atomic.Int64 // the last Sample.Lag; -1 until the first sample
}

// New returns a Watcher for cfg.
func New(cfg Config) *Watcher {
	if cfg.SampleInterval <= 0 {
		cfg.SampleInterval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{cfg: cfg, log: cfg.Logger, failed: map[string]bool{}}
	w.conn.open = cfg.Connect
	w.beat.open = cfg.HeartbeatConnect
	w.lag.Store(-1)
	return w
}

// Lag is the last sampled lag in bytes, -1 before the first sample or
// after a failed one.
func (w *Watcher) Lag() int64 { return w.lag.Load() }

// Run samples at once and then every SampleInterval, and writes a
// heartbeat every Heartbeat, until ctx ends. It returns nil.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.conn.close()
	defer w.beat.close()
	sample := time.NewTicker(w.cfg.SampleInterval)
	defer sample.Stop()
	var beat <-chan time.Time
	if w.cfg.Heartbeat > 0 {
		t := time.NewTicker(w.cfg.Heartbeat)
		defer t.Stop()
		beat = t.C
	}
	ready, sampling := w.cfg.Ready, w.cfg.Ready == nil
	if sampling {
		w.sampleOrForget(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ready:
			ready, sampling = nil, true
			w.sampleOrForget(ctx)
		case <-sample.C:
			if sampling {
				w.sampleOrForget(ctx)
			}
		case <-beat:
			if (w.cfg.Active == nil || w.cfg.Active()) && w.beatTargetOK(ctx, sampling) {
				_ = w.attempt(ctx, w.beatLink(), "write a heartbeat", w.heartbeat)
			}
		}
	}
}

// link is a connection the watcher opens when it needs it.
type link struct {
	open func(ctx context.Context) (*pgx.Conn, error)
	conn *pgx.Conn
}

// beatLink is where heartbeats are written.
func (w *Watcher) beatLink() *link {
	if w.beat.open != nil {
		return &w.beat
	}
	return &w.conn
}

// attempt runs f on l's connection, opening it first if needed. A
// failure that broke the connection closes it (the next attempt opens a
// new one); each operation's failures are logged once until it succeeds
// again.
func (w *Watcher) attempt(ctx context.Context, l *link, what string, f func(ctx context.Context, conn *pgx.Conn) error) error {
	actx, cancel := context.WithTimeout(ctx, max(w.cfg.SampleInterval, 5*time.Second))
	defer cancel()
	err := l.connect(actx)
	if err == nil {
		err = f(actx, l.conn)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return err // stopping
	case err != nil:
		if l.conn != nil && (l.conn.IsClosed() || actx.Err() != nil) {
			l.close()
		}
		if !w.failed[what] {
			w.log.Warn("cannot "+what+"; retrying on the next tick", "err", err)
		}
		w.failed[what] = true
	case w.failed[what]:
		w.failed[what] = false
		w.log.Info("slot watcher works again: " + what)
	}
	return err
}

// sampleOrForget samples, and on failure forgets the last sample: an old
// figure would look current.
func (w *Watcher) sampleOrForget(ctx context.Context) {
	if err := w.attempt(ctx, &w.conn, "sample the slot's lag", w.sample); err != nil {
		w.lag.Store(-1)
		w.report(Sample{Lag: -1, Retained: -1})
	}
}

func (l *link) connect(ctx context.Context) error {
	if l.conn != nil {
		return nil
	}
	conn, err := l.open(ctx)
	if err != nil {
		return fmt.Errorf("connect to Postgres: %w", err)
	}
	l.conn = conn
	return nil
}

func (l *link) close() {
	if l.conn != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = l.conn.Close(cctx)
		l.conn = nil
	}
}

// sample reads the slot's lag against the server's WAL: on a standby,
// where pg_current_wal_lsn() fails, the WAL it has replayed, which is
// what the slot there can decode.
func (w *Watcher) sample(ctx context.Context, conn *pgx.Conn) error {
	var lag, retained *int64
	err := conn.QueryRow(ctx, `WITH w AS (SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END AS lsn)
		SELECT pg_wal_lsn_diff(w.lsn, confirmed_flush_lsn)::bigint, pg_wal_lsn_diff(w.lsn, restart_lsn)::bigint
		FROM pg_replication_slots, w WHERE slot_name = $1`, w.cfg.Slot).Scan(&lag, &retained)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("replication slot %q does not exist", w.cfg.Slot)
	}
	if err != nil {
		return fmt.Errorf("query pg_replication_slots: %w", err)
	}
	s := Sample{Lag: -1, Retained: -1}
	if lag != nil {
		s.Lag = *lag
	}
	if retained != nil {
		s.Retained = *retained
	}
	w.lag.Store(s.Lag)
	w.report(s)
	return nil
}

func (w *Watcher) report(s Sample) {
	if w.cfg.Sampled != nil {
		w.cfg.Sampled(s)
	}
}

// heartbeat writes a non-transactional logical message: WAL in the slot's
// own database, which the slot decodes and pg2kinesis confirms, so that
// the slot moves even when its database is idle.
func (w *Watcher) heartbeat(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, "SELECT pg_logical_emit_message(false, $1, $2)",
		HeartbeatPrefix, time.Now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("write a heartbeat with pg_logical_emit_message: %w", err)
	}
	if w.cfg.OnHeartbeat != nil {
		w.cfg.OnHeartbeat()
	}
	return nil
}
