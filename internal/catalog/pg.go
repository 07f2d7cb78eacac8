package catalog

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// keysQuery lists every user table with its key, key columns in key
// order: the replica identity index under REPLICA IDENTITY USING INDEX
// (when the index still exists), else the primary key; none for a table
// without either; and whether the table has REPLICA IDENTITY FULL. One
// round trip for the whole database.
const keysQuery = `
SELECT n.nspname, c.relname, COALESCE(x.ri, false), c.relreplident = 'f',
  COALESCE((SELECT array_agg(a.attname::text ORDER BY k.ord)
    FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum), '{}')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (
  SELECT i.indkey, c.relreplident = 'i' AND i.indisreplident AS ri
  FROM pg_catalog.pg_index i
  WHERE i.indrelid = c.oid AND (i.indisprimary OR (c.relreplident = 'i' AND i.indisreplident))
  ORDER BY 2 DESC LIMIT 1) x ON true
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'`

// versionQuery changes whenever a table's key may have: a table created,
// dropped or renamed, or its replica identity set (its pg_class row), a
// primary key or replica identity index added, dropped or altered (its
// pg_index row). Every such statement writes a new row version, whose
// xmin the sums then count. Temporary tables, which are never decoded,
// are left out: an application that makes them all the time would
// otherwise reload the cache at every check. About 10 ms for 3,000
// tables without the key columns' part, 30 ms with it for 2,000 tables on
// a busy two-core test server: cheap enough to run every few seconds.
// Renaming a key column writes neither: the key columns' pg_attribute
// rows are summed too. Without them only a change lacking a cached key
// column made the handler reload (Recheck), once per key: a key column
// renamed a second time kept the stale key until the scheduled refresh.
const versionQuery = `
SELECT (SELECT count(*) || '/' || COALESCE(sum(c.xmin::text::int8), 0)
        FROM pg_catalog.pg_class c WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't')
  || ':' ||
       (SELECT count(*) || '/' || COALESCE(sum(i.xmin::text::int8), 0)
        FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
        WHERE (i.indisprimary OR i.indisreplident) AND c.relpersistence <> 't')
  || ':' ||
       (SELECT count(*) || '/' || COALESCE(sum(a.xmin::text::int8), 0)
        FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
        JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE (i.indisprimary OR i.indisreplident) AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't')`

// PG reads the catalog over one connection, opened when first needed and
// again after an error, so that the checks every few seconds do not each
// log in (which, with an IAM token, also costs a signature).
type PG struct {
	connect func(ctx context.Context) (*pgx.Conn, error)

	mu   sync.Mutex
	conn *pgx.Conn
}

var _ Source = (*PG)(nil)

// NewPG returns a Source that connects with connect.
func NewPG(connect func(ctx context.Context) (*pgx.Conn, error)) *PG {
	return &PG{connect: connect}
}

// Close closes the connection, if open.
func (p *PG) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		_ = p.conn.Close(context.Background())
		p.conn = nil
	}
}

// use runs f on the connection; an error closes it, so that the next use
// starts afresh whatever state the error left it in. A connection kept
// open may have been ended by the server meanwhile (idle_session_timeout,
// a restart): f is tried once more on a new one when the old one broke
// before f got an answer.
func (p *PG) use(ctx context.Context, f func(*pgx.Conn) error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for attempt := 0; ; attempt++ {
		reused := p.conn != nil && !p.conn.IsClosed()
		if !reused {
			conn, err := p.connect(ctx)
			if err != nil {
				return fmt.Errorf("connect to Postgres: %w", err)
			}
			p.conn = conn
		}
		err := f(p.conn)
		if err == nil {
			return nil
		}
		broken := p.conn.IsClosed() || pgconn.SafeToRetry(err)
		_ = p.conn.Close(context.Background())
		p.conn = nil
		if !reused || !broken || attempt > 0 || ctx.Err() != nil {
			return err
		}
	}
}

// Version reads the catalog's version.
func (p *PG) Version(ctx context.Context) (string, error) {
	var v string
	err := p.use(ctx, func(conn *pgx.Conn) error {
		if err := conn.QueryRow(ctx, versionQuery).Scan(&v); err != nil {
			return fmt.Errorf("query the catalog's version: %w", err)
		}
		return nil
	})
	return v, err
}

// Load reads every table's key.
func (p *PG) Load(ctx context.Context) (Keys, error) {
	keys := Keys{}
	err := p.use(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, keysQuery)
		if err != nil {
			return fmt.Errorf("query table keys: %w", err)
		}
		var n Name
		var k Key
		_, err = pgx.ForEachRow(rows, []any{&n.Schema, &n.Table, &k.Index, &k.Full, &k.Columns}, func() error {
			if len(k.Columns) == 0 {
				k.Columns = nil
			}
			keys[n] = k
			k = Key{}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read table keys: %w", err)
		}
		return nil
	})
	return keys, err
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
