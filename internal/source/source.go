// Package source streams a logical replication slot over the replication
// protocol. It manages the slot, hands every message to a Handler in stream
// order, and reports to Postgres only the flush LSN it is given: the slot
// never advances past a change that was not delivered.
package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg2kinesis/pg2kinesis/internal/backoff"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// Config says which slot to stream and how.
type Config struct {
	Conn         *pgconn.Config // a replication=database connection
	Slot         string
	Plugin       decode.Plugin
	CreateSlot   bool // create the slot if missing, on the first connection only
	RecreateSlot bool // drop and create the slot, on the first connection only
	// Failover creates the slot as a failover slot (PostgreSQL 17+), and
	// refuses an older server or an existing slot that is not one.
	Failover bool

	// pgoutput only: the publication to stream, created when missing (for
	// every table, or those PublicationTables picks when it is set), and
	// whether to turn off streaming of large in-progress transactions.
	Publication       string
	PublicationTables func(schema, table string) bool
	NoStreaming       bool
	// Published tells whether the run publishes a table's updates and
	// deletes (--table-pat, --operations; keyed: it has a primary key,
	// without which only --full-change publishes it); nil: every table's.
	// With wal2json the source warns at start about those that wal2json
	// will not send.
	Published func(schema, table string, keyed bool) bool
	// Messages asks pgoutput (PostgreSQL 14+) for logical messages, which
	// the heartbeat and the snapshots' watermarks write; the other plugins
	// always send them. Heartbeat says the heartbeat is on: with pgoutput
	// before 14 it cannot move the slot, which the start warns about
	// (only then: a run without it has nothing to be warned of).
	Messages  bool
	Heartbeat bool
	// HeartbeatElsewhere says the heartbeat writes on another server (the
	// primary, --heartbeat-dsn): without it, a standby is refused.
	HeartbeatElsewhere bool

	StatusInterval  time.Duration // longest time between status updates (default 10s)
	ShutdownTimeout time.Duration // bound on Handler.Drain at shutdown (default 30s)
	StandbyRetry    time.Duration // retry period while another process holds the slot (default 5s)
	MaxBackoff      time.Duration // cap of the reconnect backoff (default 30s)
	// ReceiveTimeout gives up a connection that stays silent this long
	// although asked for a reply, and bounds each connection attempt
	// (unless the DSN sets connect_timeout); 0 waits for ever.
	ReceiveTimeout time.Duration

	// BeforeCreateSlot, if set, runs before the slot is created (it is
	// missing, or --recreate-slot dropped it): a new slot has delivered
	// nothing, and what was recorded of the last one (a snapshot's
	// progress) must go before a stop could leave it to the next run.
	BeforeCreateSlot func(ctx context.Context) error

	// Position owns the flush LSN, the position before which every change
	// is delivered: the source asks it when a status update is due, and
	// raises it to the slot's confirmed_flush_lsn when a session starts.
	// Required; the pipeline passes its checkpoint tracker.
	Position Position

	Logger *slog.Logger

	// BeforeConnect, if set, adjusts a copy of Conn before each connection
	// attempt, the first and every reconnect: it is where a password that
	// expires (an RDS IAM token) is made fresh. Its error is handled like a
	// failed connection.
	BeforeConnect func(ctx context.Context, cfg *pgconn.Config) error
}

// Position is where the flush LSN lives (checkpoint.Tracker in
// production): the source keeps no copy of its own.
type Position interface {
	Flush() pglogrepl.LSN    // safe to report as flushed
	Raise(lsn pglogrepl.LSN) // never past what was reported; never lowers it
}

// Handler receives the stream. Its methods are called from Run's goroutine,
// one at a time, in stream order. An error from any of them stops Run.
type Handler interface {
	// HandleData receives one XLogData message. m.WALData is only valid
	// during the call: copy it to keep it.
	HandleData(ctx context.Context, m pglogrepl.XLogData) error
	// HandleKeepalive receives the server's WAL end from a primary
	// keepalive: every change before it has been handed to HandleData.
	// caughtUp is set when the server sent it of its own accord, having
	// sent everything and waiting for WAL; not for a reply to our request
	// or the server's ping, which it sends in the middle of work too.
	HandleKeepalive(ctx context.Context, walEnd pglogrepl.LSN, caughtUp bool) error
	// Drain is called once at shutdown, after reading has stopped; it waits
	// until what was handed over is delivered (and flushed) or ctx ends.
	Drain(ctx context.Context) error
}

// SessionStarter is a Handler that wants to know when a replication
// session starts: the server then streams again from the flush LSN, and
// whatever the handler kept of an unfinished transaction is stale.
type SessionStarter interface {
	SessionStart()
}

// Source streams one slot. Create it with New.
type Source struct {
	cfg Config
	log *slog.Logger

	// For metrics and readiness, read from other goroutines.
	streaming  atomic.Bool
	lastStatus atomic.Int64 // Unix nanoseconds of the last status update sent
	sessions   atomic.Uint64
	started    chan struct{} // closed when the first session starts

	connected bool // a connection has succeeded once: later failures are retried

	// The streaming session's connection and when its next status update
	// is due; used only from Run's goroutine (and the Handler it calls).
	conn       *pgconn.PgConn
	nextStatus time.Time
	quiet      silence
	reads      atomic.Uint64 // bytes read on replication connections
	prepared   bool          // slot creation and recreation are done; never redo them
	// What this run created before it streamed: a start that fails
	// removes them (undoStart).
	createdPub, createdSlot bool
	// creatorPID is the server process of the connection that last
	// created the slot: stopped mid-creation, it holds the slot until it
	// notices, and that slot is no other process's.
	creatorPID   uint32
	checkedDrops bool // wal2json's dropped tables were looked for
	// warnedFeedback: a standby's hot_standby_feedback was looked at.
	warnedFeedback bool
	// creating is true while the slot is being created: on a standby
	// that waits for the primary's next running-transactions record,
	// which the heartbeat's WAL on the primary brings about.
	creating atomic.Bool
}

// New returns a Source for cfg, with defaults filled in.
func New(cfg Config) *Source {
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = 10 * time.Second
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.StandbyRetry <= 0 {
		cfg.StandbyRetry = 5 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Publication == "" {
		cfg.Publication = "pg2kinesis"
	}
	return &Source{cfg: cfg, log: cfg.Logger.With("slot", cfg.Slot), started: make(chan struct{})}
}

// Flushed is the flush LSN that status updates report, Config.Position's.
func (s *Source) Flushed() pglogrepl.LSN { return s.cfg.Position.Flush() }

// Streaming reports whether a replication session streams now.
func (s *Source) Streaming() bool { return s.streaming.Load() }

// LastStatus is when the last status update was sent to Postgres (zero
// before the first).
func (s *Source) LastStatus() time.Time {
	if ns := s.lastStatus.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// StatusInterval is the longest time between status updates.
func (s *Source) StatusInterval() time.Duration { return s.cfg.StatusInterval }

// Started is closed when the first replication session starts: the slot
// then exists (it may be created at start) and this process holds it.
func (s *Source) Started() <-chan struct{} { return s.started }

// Sessions counts the replication sessions started (START_REPLICATION
// accepted): more than one means reconnects or standby takeovers.
func (s *Source) Sessions() uint64 { return s.sessions.Load() }

// Run streams until ctx is cancelled, reconnecting when the connection is
// lost and waiting while another process holds the slot. On cancellation it
// stops reading, lets h drain, sends a final status update and returns nil.
// It returns an error only for what retrying cannot fix: a missing slot,
// a plugin mismatch, wal_level, authentication, or h's own errors. Until a
// first connection succeeds, connection errors are returned too, so that a
// mistyped host fails at once instead of retrying forever. A run that
// fails before it streamed removes the publication and slot it created;
// one stopped before it streamed keeps a slot it created (changes are
// being kept for it: the next start streams them), and removes only a
// publication that no slot of its needs.
func (s *Source) Run(ctx context.Context, h Handler) error {
	if s.cfg.Position == nil {
		return errors.New("source: Config.Position is not set") // a wiring mistake, not a user's
	}
	err := s.run(ctx, h)
	if undo(s.sessions.Load() > 0, err, s.createdSlot) {
		s.undoStart()
	}
	return err
}

// undo says whether a run that ended with err removes what it created.
func undo(streamed bool, err error, createdSlot bool) bool {
	return !streamed && (err != nil || !createdSlot)
}

func (s *Source) run(ctx context.Context, h Handler) error {
	attempt := 0
	for {
		from := s.Flushed()
		streamed, err := s.session(ctx, h)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		// A session that streamed resets the backoff, unless the handler
		// asked for the retry and nothing was delivered meanwhile: a
		// catalog that stays down must not be hit twice a second.
		kind := classify(err)
		if streamed && (kind != kindRetryChange || s.Flushed() != from) {
			attempt = 0
		}
		var wait time.Duration
		switch kind {
		case kindFatal:
			return err
		case kindInUse:
			// Another process holds the slot: what this run created is
			// that process's too, and undoStart must leave it.
			s.createdSlot = false
			wait = s.cfg.StandbyRetry
			s.log.Info("replication slot is in use by another process; standing by", "err", err, "retry_in", wait)
		default:
			if !s.connected {
				return err
			}
			attempt++
			wait = backoff.Delay(attempt-1, 500*time.Millisecond, s.cfg.MaxBackoff)
			msg := "replication connection lost; reconnecting"
			if kind == kindRetryChange {
				msg = "cannot handle a change for now; reconnecting to read it again"
			}
			s.log.Warn(msg, "err", err, "retry_in", wait.Round(time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// session runs one replication connection. streamed reports whether
// START_REPLICATION succeeded, which resets the backoff.
func (s *Source) session(ctx context.Context, h Handler) (streamed bool, err error) {
	connCfg := dialConfig(s.cfg.Conn, &s.reads)
	if connCfg.ConnectTimeout == 0 {
		connCfg.ConnectTimeout = s.cfg.ReceiveTimeout // a dead network must not hang the reconnect
	}
	if s.cfg.BeforeConnect != nil {
		if err := s.cfg.BeforeConnect(ctx, connCfg); err != nil {
			return false, fmt.Errorf("prepare the replication connection: %w", err)
		}
	}
	conn, err := pgconn.ConnectConfig(ctx, connCfg)
	if err != nil {
		return false, fmt.Errorf("connect to Postgres for replication: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	s.connected = true

	// The setup's queries are bounded like the connection (prepareSlot
	// bounds its own, but for the creation of a slot).
	setup, cancel := s.setupContext(ctx)
	defer cancel()
	if err := checkServer(setup, conn); err != nil {
		return false, err
	}
	if err := s.checkStandby(setup, conn); err != nil {
		return false, err
	}
	if s.cfg.Plugin == decode.Wal2JSON && !s.checkedDrops {
		s.checkedDrops = true
		s.warnWal2JSONDrops(setup, conn)
	}
	limit := silenceLimit(setup, conn, s.cfg.ReceiveTimeout)
	info, err := s.prepareSlot(ctx, conn)
	if err != nil {
		return false, err
	}
	s.cfg.Position.Raise(info.confirmedFlush)
	start := s.Flushed()
	startCtx, cancelStart := s.setupContext(ctx) // anew: creating the slot may have taken long
	defer cancelStart()
	err = pglogrepl.StartReplication(startCtx, conn, s.cfg.Slot, start,
		pglogrepl.StartReplicationOptions{PluginArgs: s.pluginArgs(serverMajor(conn))})
	if err != nil {
		return false, fmt.Errorf("start replication on slot %q: %w", s.cfg.Slot, err)
	}
	if r, ok := h.(SessionStarter); ok {
		r.SessionStart()
	}
	s.log.Info("streaming from replication slot", "plugin", s.cfg.Plugin, "from_lsn", start)
	// START_REPLICATION told the server where we are: a status update.
	s.lastStatus.Store(time.Now().UnixNano())
	if s.sessions.Add(1) == 1 {
		close(s.started)
	}
	s.streaming.Store(true)
	defer s.streaming.Store(false)
	s.quiet = newSilence(limit, s.reads.Load())
	return true, s.missingPublication(s.receive(ctx, conn, h))
}

// setupContext bounds a session's setup queries by ReceiveTimeout.
func (s *Source) setupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.cfg.ReceiveTimeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.cfg.ReceiveTimeout)
}
