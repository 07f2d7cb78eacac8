package pipeline

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
)

// delivery logs, at debug level, every transaction once the flush LSN has
// passed its commit, with the time since the server committed it: the
// commit-to-acknowledgement latency, which make bench reports. At any
// other level it is nil and costs nothing.
type delivery struct {
	log     *slog.Logger
	mu      sync.Mutex
	pending []commitAt // in commit order
}

type commitAt struct {
	lsn pglogrepl.LSN
	at  time.Time
}

func newDelivery(log *slog.Logger) *delivery {
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return nil
	}
	return &delivery{log: log}
}

// committed notes a transaction that commits at lsn, at the server's time
// at (zero when the plugin does not say: not logged).
func (d *delivery) committed(lsn pglogrepl.LSN, at time.Time) {
	if d == nil || at.IsZero() {
		return
	}
	d.mu.Lock()
	d.pending = append(d.pending, commitAt{lsn, at})
	d.mu.Unlock()
}

// flushed logs the transactions that flush LSN lsn has delivered.
func (d *delivery) flushed(lsn pglogrepl.LSN) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now, n := time.Now(), 0
	for ; n < len(d.pending) && d.pending[n].lsn <= lsn; n++ {
		d.log.Debug("transaction delivered", "commit_lsn", d.pending[n].lsn,
			"latency_ms", float64(now.Sub(d.pending[n].at).Microseconds())/1000)
	}
	d.pending = d.pending[n:]
}
