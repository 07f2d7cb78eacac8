package source

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// tableIdentity is what a table's replica identity lets a publication and
// wal2json do with its updates and deletes. The two agree: wal2json drops
// (on the server, with only a warning there) the updates and deletes of a
// table without the identity that Postgres requires of a published one.
type tableIdentity struct {
	schema, name string
	// usable: Postgres lets the application UPDATE and DELETE the table
	// once a publication covers it, and wal2json sends them: FULL, or a
	// valid immediate primary key under DEFAULT, or the chosen index under
	// USING INDEX (Postgres' replica-identity index, wal2json's test).
	usable bool
	keyed  bool // a valid, immediate primary key
	// within is the table and the tables it inherits from (partitioned
	// parents included): FOR TABLE covers a table when it names any of them.
	within [][2]string
}

// identitiesQuery lists the tables a publication can cover (ordinary,
// permanent, not made by initdb (oid 16384 is FirstNormalObjectId), outside
// the system schemas: partitioned parents hold no rows, and Postgres
// checks the partition an UPDATE touches), each once per table it is or
// inherits from. The index conditions are the ones
// Postgres applies when it picks the replica-identity index.
const identitiesQuery = `
WITH RECURSIVE up(leaf, anc) AS (
  SELECT c.oid, c.oid FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND c.oid >= 16384
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
  UNION
  SELECT up.leaf, i.inhparent FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.anc
)
SELECT ln.nspname, l.relname, an.nspname, a.relname,
  l.relreplident = 'f' OR EXISTS (SELECT 1 FROM pg_catalog.pg_index x
    WHERE x.indrelid = l.oid AND x.indisvalid AND x.indimmediate
      AND CASE l.relreplident WHEN 'd' THEN x.indisprimary WHEN 'i' THEN x.indisreplident ELSE false END),
  EXISTS (SELECT 1 FROM pg_catalog.pg_index x WHERE x.indrelid = l.oid AND x.indisvalid AND x.indimmediate AND x.indisprimary)
FROM up
JOIN pg_catalog.pg_class l ON l.oid = up.leaf JOIN pg_catalog.pg_namespace ln ON ln.oid = l.relnamespace
JOIN pg_catalog.pg_class a ON a.oid = up.anc JOIN pg_catalog.pg_namespace an ON an.oid = a.relnamespace
ORDER BY 1, 2, up.leaf = up.anc DESC`

// identities lists the replica identity of every table a publication can
// cover, in name order.
func identities(ctx context.Context, conn *pgconn.PgConn) ([]tableIdentity, error) {
	rows, err := query(ctx, conn, identitiesQuery)
	if err != nil {
		return nil, fmt.Errorf("read the tables' replica identities: %w", err)
	}
	var out []tableIdentity
	for _, r := range rows {
		if n := len(out); n == 0 || out[n-1].schema != r[0] || out[n-1].name != r[1] {
			out = append(out, tableIdentity{schema: r[0], name: r[1], usable: r[4] == "t", keyed: r[5] == "t"})
		}
		t := &out[len(out)-1]
		t.within = append(t.within, [2]string{r[2], r[3]})
	}
	return out, nil
}

// covered keeps the tables that pick (nil: every table) selects, itself or
// through a table it inherits from.
func covered(tables []tableIdentity, pick func(schema, table string) bool) []tableIdentity {
	if pick == nil {
		return tables
	}
	var out []tableIdentity
	for _, t := range tables {
		for _, w := range t.within {
			if pick(w[0], w[1]) {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

// warnWal2JSONDrops warns about the published tables whose updates and
// deletes wal2json drops on the server: it logs only a warning there, so
// nothing on this side would tell, nor count them.
func (s *Source) warnWal2JSONDrops(ctx context.Context, conn *pgconn.PgConn) {
	tables, err := identities(ctx, conn)
	if err != nil {
		s.log.Warn("cannot check which tables wal2json drops the updates and deletes of", "err", err)
		return
	}
	var dropped []tableIdentity
	for _, t := range tables {
		if !t.usable && (s.cfg.Published == nil || s.cfg.Published(t.schema, t.name, t.keyed)) {
			dropped = append(dropped, t)
		}
	}
	if len(dropped) == 0 {
		return
	}
	s.log.Warn("wal2json does not send the updates and deletes of these tables (REPLICA IDENTITY DEFAULT without a primary key, NOTHING, or USING INDEX of a dropped index), "+
		"and pg2kinesis can neither see nor count them: give each a primary key or run ALTER TABLE <table> REPLICA IDENTITY FULL, "+
		"or leave them out with --table-pat", "tables", nameList(dropped), "count", len(dropped))
}

// maxNamed bounds the tables an error or warning names.
const maxNamed = 10

// nameList names tables for a message, the first maxNamed of them, with
// a count of the rest.
func nameList(tables []tableIdentity) string {
	names := make([]string, 0, min(len(tables), maxNamed))
	for _, t := range tables[:min(len(tables), maxNamed)] {
		names = append(names, sqlName(t.schema)+"."+sqlName(t.name))
	}
	s := strings.Join(names, ", ")
	if len(tables) > maxNamed {
		s += fmt.Sprintf(" and %d more", len(tables)-maxNamed)
	}
	return s
}

var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_$]*$`)

// sqlName is an identifier as SQL reads it, quoted only where needed, so
// that a message's names paste into the ALTER TABLE it suggests.
func sqlName(s string) string {
	if plainIdent.MatchString(s) {
		return s
	}
	return quoteIdent(s)
}
