// Package backoff computes retry delays: exponential, capped, with jitter.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Delay is the wait before retry number attempt (0 for the first): base
// doubled attempt times and capped at max, of which a random half is
// jitter, so that retries from many places spread out.
func Delay(attempt int, base, max time.Duration) time.Duration {
	d := base
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + rand.N(d/2+1)
}
