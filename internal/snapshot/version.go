package snapshot

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
)

// versionQuery names the versions (xmin) of every catalog row Describe
// reads: the table's pg_class row and its schema's, its columns', its
// indexes' (the primary key, the replica identity), and its column types'
// with the types a domain is over and their schemas. DDL that changes what
// Describe would say writes a new version of one of them (a new xmin, never
// an old one again); VACUUM and ANALYZE update pg_class in place, without
// one. A fraction of Describe's cost (its column query follows each
// domain down for each column), and it runs after every chunk.
const versionQuery = `WITH RECURSIVE ty(oid) AS (
	SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0
	UNION
	SELECT t.typbasetype FROM ty JOIN pg_type t ON t.oid = ty.oid WHERE t.typtype = 'd'
)
SELECT c.oid || ':' || c.xmin || '/' || n.xmin
	|| '/' || coalesce((SELECT string_agg(a.attnum || ':' || a.xmin, ',' ORDER BY a.attnum)
		FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0), '')
	|| '/' || coalesce((SELECT string_agg(i.indexrelid || ':' || i.xmin, ',' ORDER BY i.indexrelid)
		FROM pg_index i WHERE i.indrelid = c.oid), '')
	|| '/' || coalesce((SELECT string_agg(t.oid || ':' || t.xmin || ':' || tn.xmin, ',' ORDER BY t.oid)
		FROM ty JOIN pg_type t ON t.oid = ty.oid JOIN pg_namespace tn ON tn.oid = t.typnamespace), '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = $1::regclass`

// shapeVersion is the version of name's description: equal versions,
// taken one after the other, mean that no DDL changed the table in
// between. Taken before a Describe, it is no newer than the description.
func shapeVersion(ctx context.Context, conn *pgx.Conn, name catalog.Name) (string, error) {
	var v string
	if err := conn.QueryRow(ctx, versionQuery, quoteName(name)).Scan(&v); err != nil {
		return "", fmt.Errorf("the catalog version of %s: %w", name, err)
	}
	return v, nil
}

// quoteName is name as SQL text: a regclass parameter's.
func quoteName(name catalog.Name) string {
	return pgx.Identifier{name.Schema, name.Table}.Sanitize()
}
