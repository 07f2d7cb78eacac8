// Package catalog caches the primary keys of the connected database's
// tables, which the formats need to name a changed row.
package catalog

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// Keys maps "schema.table" (unquoted names) to the table's primary-key
// columns, in key order.
type Keys map[string][]string

// Loader reads every table's primary key.
type Loader func(ctx context.Context) (Keys, error)

// Cache is a primary-key cache, safe for concurrent use. Create it with New
// and fill it with Refresh.
type Cache struct {
	load Loader
	log  *slog.Logger

	mu        sync.RWMutex
	keys      Keys
	missed    map[string]bool // looked up, refreshed, still unknown: no key
	refreshes int
}

// New returns an empty cache that loads with load.
func New(load Loader, log *slog.Logger) *Cache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cache{load: load, log: log, keys: Keys{}, missed: map[string]bool{}}
}

// loadTimeout bounds one load of the keys (a catalog of thousands of
// tables takes a second or two).
const loadTimeout = time.Minute

// Refresh reloads every key. On error the cache keeps its old keys.
func (c *Cache) Refresh(ctx context.Context) error {
	// A load runs inside the handling of a change when a table is new: a
	// network that drops packets must end it (the pipeline then
	// reconnects), not hang it.
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	keys, err := c.load(ctx)
	if err != nil {
		return fmt.Errorf("load primary keys: %w", err)
	}
	c.mu.Lock()
	c.keys, c.missed = keys, map[string]bool{}
	c.refreshes++
	c.mu.Unlock()
	c.log.Debug("primary-key cache refreshed", "tables", len(keys))
	return nil
}

// Refreshes counts the successful refreshes.
func (c *Cache) Refreshes() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.refreshes
}

// Key returns the primary key of schema.table. A table the cache does not
// know triggers one refresh (it may be new) before it counts as having no
// primary key; later lookups of it do not refresh again until the next
// scheduled or SIGHUP refresh. ok is false for a table without a key.
func (c *Cache) Key(ctx context.Context, schema, table string) (key []string, ok bool, err error) {
	name := schema + "." + table
	c.mu.RLock()
	key, ok = c.keys[name]
	missed := c.missed[name]
	c.mu.RUnlock()
	if ok || missed {
		return key, ok, nil
	}
	if err := c.Refresh(ctx); err != nil {
		return nil, false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key, ok = c.keys[name]
	if !ok {
		c.missed[name] = true
	}
	return key, ok, nil
}

// Ordered returns cols, key columns that the plugin named (pgoutput's
// replica identity, in column order), in the order of schema.table's
// primary key when the cache knows it with the same columns, so that a
// composite key reads the same whichever plugin names it. Otherwise cols
// as given. It never refreshes: the plugin's word is enough to know the
// table has a key.
func (c *Cache) Ordered(schema, table string, cols []string) []string {
	if len(cols) < 2 {
		return cols
	}
	c.mu.RLock()
	key, ok := c.keys[schema+"."+table]
	c.mu.RUnlock()
	if !ok || len(key) != len(cols) {
		return cols
	}
	for _, k := range key {
		if !slices.Contains(cols, k) {
			return cols
		}
	}
	return key
}

// RefreshEvery refreshes on every tick of interval and on every value from
// hup (SIGHUP), until ctx ends. A failed refresh is logged; the old keys stay.
func (c *Cache) RefreshEvery(ctx context.Context, interval time.Duration, hup <-chan struct{}) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-hup:
			c.log.Info("SIGHUP: refreshing the primary-key cache")
		}
		if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("primary-key cache refresh failed; keeping the old keys", "err", err)
		}
	}
}

// keysQuery lists every primary key of the database, key columns in key
// order, in one round trip.
const keysQuery = `
SELECT n.nspname, c.relname, array_agg(a.attname::text ORDER BY k.ord)
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indisprimary
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'
GROUP BY n.nspname, c.relname`

// PGLoader loads keys over a fresh connection each time, so that an hourly
// refresh needs no connection kept open in between.
func PGLoader(cfg *pgx.ConnConfig) Loader {
	return func(ctx context.Context) (Keys, error) {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("connect to Postgres: %w", err)
		}
		defer conn.Close(context.Background())
		rows, err := conn.Query(ctx, keysQuery)
		if err != nil {
			return nil, fmt.Errorf("query primary keys: %w", err)
		}
		keys := Keys{}
		var schema, table string
		var cols []string
		_, err = pgx.ForEachRow(rows, []any{&schema, &table, &cols}, func() error {
			keys[schema+"."+table] = cols
			cols = nil
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read primary keys: %w", err)
		}
		return keys, nil
	}
}

// TableLister lists the connected database's user tables.
type TableLister func(ctx context.Context) ([]decode.Table, error)

// tablesQuery lists the ordinary and partitioned tables outside the system
// schemas, with the spelling test_decoding gives them (quoted where needed).
const tablesQuery = `
SELECT n.nspname, c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'`

// PGTables lists tables over a fresh connection.
func PGTables(cfg *pgx.ConnConfig) TableLister {
	return func(ctx context.Context) ([]decode.Table, error) {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("connect to Postgres: %w", err)
		}
		defer conn.Close(context.Background())
		rows, err := conn.Query(ctx, tablesQuery)
		if err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		var tables []decode.Table
		var t decode.Table
		_, err = pgx.ForEachRow(rows, []any{&t.Schema, &t.Name, &t.Raw}, func() error {
			tables = append(tables, t)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read tables: %w", err)
		}
		return tables, nil
	}
}
