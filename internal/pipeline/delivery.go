package pipeline

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
)

// delivery follows each transaction from its commit to the moment the
// flush LSN passes it. It gives the lag in seconds (see lag) and, at debug
// level, logs every delivered transaction with its commit-to-
// acknowledgement latency, which make bench reports.
type delivery struct {
	log       *slog.Logger // nil unless debug logging is on
	mu        sync.Mutex
	pending   []commitAt // in commit order
	head      int        // pending[:head] are delivered
	delivered time.Time  // commit time of the last transaction delivered
	flushLSN  atomic.Uint64
	// caughtUp is set by a keepalive and cleared by data: the server sends
	// a keepalive when it has sent everything and waits for more WAL.
	caughtUp atomic.Bool
}

type commitAt struct {
	lsn pglogrepl.LSN
	at  time.Time
}

func newDelivery(log *slog.Logger) *delivery {
	d := &delivery{}
	if log.Enabled(context.Background(), slog.LevelDebug) {
		d.log = log
	}
	return d
}

// committed notes a transaction that commits at lsn, at the server's time
// at (zero when the plugin does not say: not followed).
func (d *delivery) committed(lsn pglogrepl.LSN, at time.Time) {
	if at.IsZero() {
		return
	}
	d.mu.Lock()
	if uint64(lsn) > d.flushLSN.Load() {
		d.pending = append(d.pending, commitAt{lsn, at})
	}
	d.mu.Unlock()
}

// flushed forgets (and at debug level logs) the transactions that flush
// LSN lsn has delivered.
func (d *delivery) flushed(lsn pglogrepl.LSN) {
	// Every acknowledgement gets here; most do not move the flush LSN.
	if uint64(lsn) <= d.flushLSN.Load() {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if uint64(lsn) <= d.flushLSN.Load() {
		return
	}
	d.flushLSN.Store(uint64(lsn))
	var now time.Time
	if d.log != nil {
		now = time.Now()
	}
	for ; d.head < len(d.pending) && d.pending[d.head].lsn <= lsn; d.head++ {
		d.delivered = d.pending[d.head].at
		if d.log != nil {
			d.log.Debug("transaction delivered", "commit_lsn", d.pending[d.head].lsn,
				"latency_ms", float64(now.Sub(d.pending[d.head].at).Microseconds())/1000)
		}
	}
	// Reuse the array once it is drained, or when the delivered half is
	// worth moving the rest down.
	if d.head == len(d.pending) || d.head > len(d.pending)/2 {
		n := copy(d.pending, d.pending[d.head:])
		d.pending, d.head = d.pending[:n], 0
	}
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
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.head == len(d.pending) && at.After(d.delivered) {
		d.delivered = at
	}
}

// lag is how far behind its commits delivery is at now: how long the
// oldest transaction read but not yet delivered has been committed; when
// none waits, 0 if the server has said it has nothing more to send, and
// otherwise (reading a backlog, or a gap before the next message) how
// long the last delivered transaction has been committed, or the last
// heartbeat read has been written, whichever is later.
func (d *delivery) lag(now time.Time) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.head < len(d.pending):
		return max(0, now.Sub(d.pending[d.head].at))
	case d.caughtUp.Load() || d.delivered.IsZero():
		return 0
	}
	return max(0, now.Sub(d.delivered))
}
