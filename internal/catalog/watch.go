package catalog

import (
	"context"
	"fmt"
	"time"
)

// Check reads the catalog's version and reloads when it changed since the
// last load. It reports whether it reloaded.
func (c *Cache) Check(ctx context.Context) (bool, error) {
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	vctx, cancel := context.WithTimeout(ctx, versionTimeout)
	v, err := c.src.Version(vctx)
	cancel()
	c.mu.Lock()
	c.checks++
	same := v == c.version
	c.mu.Unlock()
	if err != nil {
		return false, fmt.Errorf("read the catalog's version: %w", err)
	}
	if same {
		return false, nil
	}
	return true, c.loadAt(ctx, v) // the version just read: no need to read it again
}

// Watch keeps the cache current until ctx ends: it checks the catalog's
// version every check (a key added, dropped or changed is then seen
// within that time; 0: no checks), reloads everything every refresh and
// on every value from hup (SIGHUP). A failure is logged; the old keys
// stay.
func (c *Cache) Watch(ctx context.Context, refresh, check time.Duration, hup <-chan struct{}) error {
	full := time.NewTicker(refresh)
	defer full.Stop()
	var checks <-chan time.Time
	if check > 0 {
		t := time.NewTicker(check)
		defer t.Stop()
		checks = t.C
	}
	failing := false
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-checks:
			var reloaded bool
			if reloaded, err = c.Check(ctx); reloaded && err == nil {
				c.log.Debug("the catalog changed: key cache reloaded")
			}
		case <-full.C:
			err = c.Refresh(ctx)
		case <-hup:
			c.log.Info("SIGHUP: reloading the key cache")
			err = c.Refresh(ctx)
		}
		switch {
		case err == nil:
			failing = false
		case ctx.Err() != nil:
		case failing: // an outage would otherwise warn every check
			c.log.Debug("key cache reload failed again; keeping the old keys", "err", err)
		default:
			failing = true
			c.log.Warn("key cache reload failed; keeping the old keys", "err", err)
		}
	}
}
