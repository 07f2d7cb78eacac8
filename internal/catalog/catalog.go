// Package catalog caches the key of each of the connected database's
// tables, which the formats need to name a changed row when the plugin
// does not name it (test_decoding always, pgoutput under REPLICA IDENTITY
// FULL or NOTHING), and whether a table uses a replica-identity index.
//
// The cache holds today's catalog, not the catalog as of a change: a
// change decoded after its table was renamed or dropped names a table the
// cache may not know (Unknown), and a key added or changed is seen at the
// next check of the catalog's version (Watch), within seconds.
package catalog

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Name is a table's schema and name, unquoted. A struct, not a joined
// string: "a.b".c and a."b.c" are two tables.
type Name struct{ Schema, Table string }

func (n Name) String() string { return n.Schema + "." + n.Table }

// Key is the key a table's changes are published with: its replica
// identity index's columns when the table has REPLICA IDENTITY USING
// INDEX, else its primary key's, in key order. Columns is empty for a
// table without a key.
type Key struct {
	Columns []string
	Index   bool // the replica identity index, not the primary key
	// Full: REPLICA IDENTITY FULL, under which an update or delete
	// carries the whole old row, key or not.
	Full bool
}

// PK is a primary key of cols.
func PK(cols ...string) Key { return Key{Columns: cols} }

// Keys is every table of the database, keyless ones too (an empty Key),
// so that a table that is not there is told from one without a key.
type Keys map[Name]Key

// Source reads the catalog. Version is cheap, and changes whenever a key
// may have changed (a table created, dropped or renamed, a key or replica
// identity altered); a Source whose Version never changes is only
// reloaded on schedule, on SIGHUP and for a table it does not know.
type Source interface {
	Load(ctx context.Context) (Keys, error)
	Version(ctx context.Context) (string, error)
}

// Status is what the cache knows of a table.
type Status uint8

const (
	// Unknown: no table of that name existed at the last load (renamed
	// or dropped since the change, or created after the load).
	Unknown Status = iota
	Keyless
	Keyed
)

func (s Status) String() string {
	switch s {
	case Keyless:
		return "keyless"
	case Keyed:
		return "keyed"
	}
	return "unknown"
}

func statusOf(k Key) Status {
	if len(k.Columns) == 0 {
		return Keyless
	}
	return Keyed
}

// Timing bounds.
const (
	loadTimeout    = time.Minute      // one load (thousands of tables take a second or two)
	versionTimeout = 10 * time.Second // one version check
	// minLoadGap spaces the loads that lookups ask for: a stream of
	// changes naming tables the cache does not know must not turn into a
	// stream of catalog reloads.
	minLoadGap = time.Second
	maxUnknown = 10000 // names remembered as unknown before the set starts over
)

// Cache is a key cache, safe for concurrent use. Create it with New and
// fill it with Refresh.
type Cache struct {
	src    Source
	log    *slog.Logger
	minGap time.Duration

	loadMu sync.Mutex // one load at a time; who waited for it uses its result

	mu      sync.RWMutex
	keys    Keys
	version string
	loads   int // successful loads
	// begun numbers the loads as they begin; fresh is the number of the
	// last successful one. A lookup trusts only a load that began after
	// it did: one already running may have read the catalog before the
	// lookup's table was created.
	begun, fresh int
	checks       int       // version checks
	loadedAt     time.Time // when the last load started
	unknown      map[Name]struct{}
	// rechecked: the key a table had when a change last made the
	// cache reload for it (Recheck); the same evidence against the
	// same key does not reload again.
	rechecked map[Name][]string
	// domains is read for every column of a JSON record: no lock.
	domains atomic.Pointer[Domains]
}

// New returns an empty cache that reads src.
func New(src Source, log *slog.Logger) *Cache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cache{src: src, log: log, minGap: minLoadGap, keys: Keys{},
		unknown: map[Name]struct{}{}, rechecked: map[Name][]string{}}
}

// Refresh reloads every key now. On error the cache keeps its old keys.
func (c *Cache) Refresh(ctx context.Context) error {
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	return c.load(ctx)
}

// load reads the catalog. Caller holds loadMu.
func (c *Cache) load(ctx context.Context) error {
	// A load can run inside the handling of a change: a network that
	// drops packets must end it (the pipeline then reconnects), not hang
	// it.
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	// The version first: a change made between the two is then seen by
	// the next check, never lost between them.
	version, err := c.src.Version(ctx)
	if err != nil {
		return fmt.Errorf("read the catalog's version: %w", err)
	}
	return c.loadAt(ctx, version)
}

// loadAt reads the keys (and domains) of the catalog whose version was
// just read. Caller holds loadMu.
func (c *Cache) loadAt(ctx context.Context, version string) error {
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	c.mu.Lock()
	c.begun++
	gen := c.begun
	c.mu.Unlock()
	started := time.Now()
	keys, err := c.src.Load(ctx)
	if err != nil {
		return fmt.Errorf("load table keys: %w", err)
	}
	if dl, ok := c.src.(DomainLister); ok {
		domains, err := dl.Domains(ctx)
		if err != nil {
			return fmt.Errorf("load domains: %w", err)
		}
		c.domains.Store(&domains)
	}
	c.mu.Lock()
	c.keys, c.version, c.loadedAt = keys, version, started
	c.loads++
	c.fresh = gen
	for n := range c.unknown {
		if _, ok := keys[n]; ok {
			delete(c.unknown, n)
		}
	}
	c.mu.Unlock()
	c.log.Debug("key cache loaded", "tables", len(keys))
	return nil
}

// loadSince loads unless a load that began after the caller's mark (seen)
// has succeeded; it spaces such loads by minGap, waiting if need be.
func (c *Cache) loadSince(ctx context.Context, seen int) error {
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	c.mu.RLock()
	fresh, last := c.fresh > seen, c.loadedAt
	c.mu.RUnlock()
	if fresh {
		return nil
	}
	if wait := c.minGap - time.Since(last); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return c.load(ctx)
}

// mark is what a lookup notes as it begins, for loadSince.
func (c *Cache) mark() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.begun
}

// Refreshes counts the successful loads.
func (c *Cache) Refreshes() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.loads
}

// Checks counts the version checks.
func (c *Cache) Checks() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.checks
}

// Lookup returns the key of n. A name the cache has never looked for
// since it was last loaded may be a new table: the first lookup of it
// reloads (spaced by a second, and shared with concurrent lookups);
// after that it is Unknown until a later load finds it.
func (c *Cache) Lookup(ctx context.Context, n Name) (Key, Status, error) {
	c.mu.RLock()
	k, ok := c.keys[n]
	_, unknown := c.unknown[n]
	seen := c.begun
	c.mu.RUnlock()
	switch {
	case ok:
		return k, statusOf(k), nil
	case unknown:
		return Key{}, Unknown, nil
	}
	if err := c.loadSince(ctx, seen); err != nil {
		return Key{}, Unknown, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.keys[n]; ok {
		return k, statusOf(k), nil
	}
	remember(c.unknown, n, struct{}{})
	return Key{}, Unknown, nil
}

// Tables lists every table the cache knows, keyless ones too, as of its
// last load: an initial snapshot covers those the run publishes.
func (c *Cache) Tables() []Name {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]Name, 0, len(c.keys))
	for n := range c.keys {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b Name) int {
		return cmp.Or(cmp.Compare(a.Schema, b.Schema), cmp.Compare(a.Table, b.Table))
	})
	return names
}

// remember sets m[n], starting m over when it holds maxUnknown names: the
// names of tables dropped long ago must not pile up without end.
func remember[V any](m map[Name]V, n Name, v V) {
	if len(m) >= maxUnknown {
		clear(m)
	}
	m[n] = v
}

// Recheck reloads because a change contradicts the cached key of n (a key
// column it lacks, or an old key of a table cached as keyless), then
// returns the key as Lookup does. The same contradiction of the same
// cached key reloads once: some are lasting (a keyless table under
// REPLICA IDENTITY FULL always sends its old row).
func (c *Cache) Recheck(ctx context.Context, n Name) (Key, Status, error) {
	c.mu.RLock()
	k, ok := c.keys[n]
	last, done := c.rechecked[n]
	seen := c.begun
	c.mu.RUnlock()
	if ok && done && slices.Equal(last, k.Columns) {
		return k, statusOf(k), nil
	}
	if err := c.loadSince(ctx, seen); err != nil {
		return k, Unknown, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok = c.keys[n]
	remember(c.rechecked, n, k.Columns)
	if !ok { // dropped or renamed since: no need to look for it again
		remember(c.unknown, n, struct{}{})
		return Key{}, Unknown, nil
	}
	return k, statusOf(k), nil
}

// Ordered returns cols, key columns that the plugin named (in column
// order), in the order of n's key when the cache knows it with the same
// columns, so that a composite key reads the same whichever plugin names
// it. Otherwise cols as given. It never reads the catalog: the plugin's
// word is enough to know the table has a key.
func (c *Cache) Ordered(n Name, cols []string) []string {
	if len(cols) < 2 {
		return cols
	}
	c.mu.RLock()
	key, ok := c.keys[n]
	c.mu.RUnlock()
	if !ok || len(key.Columns) != len(cols) {
		return cols
	}
	for _, k := range key.Columns {
		if !slices.Contains(cols, k) {
			return cols
		}
	}
	return key.Columns
}
