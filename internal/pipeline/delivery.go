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
// flush LSN passes it. It gives the lag in seconds (how long the oldest
// undelivered transaction has been committed) and, at debug level, logs
// every delivered transaction with its commit-to-acknowledgement latency,
// which make bench reports.
type delivery struct {
	log      *slog.Logger // nil unless debug logging is on
	mu       sync.Mutex
	pending  []commitAt // in commit order
	head     int        // pending[:head] are delivered
	flushLSN atomic.Uint64
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

// lag is how long the oldest transaction not yet delivered has been
// committed at now; 0 when every transaction read is delivered.
func (d *delivery) lag(now time.Time) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.head == len(d.pending) {
		return 0
	}
	return max(0, now.Sub(d.pending[d.head].at))
}
