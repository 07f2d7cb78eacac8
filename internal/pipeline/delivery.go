package pipeline

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/checkpoint"
)

// delivery gives the lag in seconds (see lag). The ordered list of the
// transactions read and not yet flushed, with their commit times, is the
// checkpoint tracker's: this adds only what the stream says besides, a
// heartbeat's date and whether the server is caught up.
type delivery struct {
	tracker *checkpoint.Tracker
	mu      sync.Mutex
	beat    time.Time // the last heartbeat read with nothing waiting
	// caughtUp is set by a keepalive and cleared by data: the server sends
	// a keepalive when it has sent everything and waits for more WAL.
	caughtUp atomic.Bool
}

// newDelivery follows tr; at debug level it logs every delivered
// transaction with its commit-to-acknowledgement latency, which make bench
// reports.
func newDelivery(tr *checkpoint.Tracker, log *slog.Logger) *delivery {
	if log.Enabled(context.Background(), slog.LevelDebug) {
		tr.OnDeliver(func(lsn pglogrepl.LSN, at time.Time) {
			if at.IsZero() {
				return // not dated by the plugin: no latency to give
			}
			log.Debug("transaction delivered", "commit_lsn", lsn,
				"latency_ms", float64(time.Since(at).Microseconds())/1000)
		})
	}
	return &delivery{tracker: tr}
}

// receiving notes a message of the stream; idle, a keepalive.
func (d *delivery) receiving() {
	if d.caughtUp.Load() {
		d.caughtUp.Store(false)
	}
}

func (d *delivery) idle() { d.caughtUp.Store(true) }

// heartbeat dates the stream with a heartbeat's content, the time
// pg2kinesis wrote it: with nothing waiting, the stream is as far behind
// as the heartbeat is old. Without this, a database that only the
// heartbeat moves would show the age of its last real commit, growing for
// as long as the server sends no keepalive (while it is busy with other
// databases, the case heartbeats are for).
func (d *delivery) heartbeat(content []byte) {
	at, err := time.Parse(time.RFC3339Nano, string(content))
	if err != nil {
		return // another writer's message with our prefix: not a date
	}
	if waiting, _ := d.tracker.Times(); !waiting.IsZero() {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if at.After(d.beat) {
		d.beat = at
	}
}

// lag is how far behind its commits delivery is at now: how long the
// oldest transaction read but not yet delivered has been committed; when
// none waits, 0 if the server has said it has nothing more to send, and
// otherwise (reading a backlog, or a gap before the next message) how
// long the last delivered transaction has been committed, or the last
// heartbeat read has been written, whichever is later.
func (d *delivery) lag(now time.Time) time.Duration {
	waiting, delivered := d.tracker.Times()
	if !waiting.IsZero() {
		return max(0, now.Sub(waiting))
	}
	d.mu.Lock()
	if d.beat.After(delivered) {
		delivered = d.beat
	}
	d.mu.Unlock()
	if d.caughtUp.Load() || delivered.IsZero() {
		return 0
	}
	return max(0, now.Sub(delivered))
}
