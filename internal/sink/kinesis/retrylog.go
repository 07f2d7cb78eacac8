package kinesis

import (
	"log/slog"
	"sync"
	"time"
)

// retryLogEvery is how often a retry is logged as a warning.
const retryLogEvery = 10 * time.Second

// retryLog keeps retries from flooding the log: under sustained
// throttling every shard retries several times a second. The first retry
// after a quiet spell is a warning; the next ones, until retryLogEvery has
// passed, are debug lines, which the next warning counts.
type retryLog struct {
	mu     sync.Mutex
	warned time.Time
	quiet  int // retries logged at debug level since the last warning
}

// level is the level to log a retry at now, and, for a warning, how many
// retries since the last warning were logged at debug level.
func (r *retryLog) level(now time.Time) (slog.Level, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.warned.IsZero() && now.Sub(r.warned) < retryLogEvery {
		r.quiet++
		return slog.LevelDebug, 0
	}
	n := r.quiet
	r.warned, r.quiet = now, 0
	return slog.LevelWarn, n
}
