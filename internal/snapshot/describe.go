package snapshot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// Table is a table described for reading: the columns the plugin prints,
// how it prints them, and the statements that read it. It does not change
// once described, so Reads may run concurrently, each on its own
// connection. A schema change after Describe is not seen: describe the
// table again.
type Table struct {
	name   catalog.Name
	plugin decode.Plugin
	table  decode.Table // as the plugin names it
	cols   []column     // the columns the plugin prints, in attnum order
	key    []keyColumn  // in key order; empty without a key
	// primaryKey is wal2json's include-pk: the primary key's columns in
	// column order, whatever the key is.
	primaryKey []string
	// rowsPerPage is the estimate that sizes a keyless chunk's block range.
	rowsPerPage float64
	quoted      string   // the table's name as SQL
	preamble    [][]byte // pgoutput: the Type and Relation messages
	relID       uint32   // pgoutput: the id the Insert messages name
}

type column struct {
	name  string
	typ   string // as the plugin prints it (not used for pgoutput)
	style style
	// pgoutput's Relation message fields.
	typOID   uint32
	typmod   int32
	identity bool
}

type keyColumn struct {
	name   string
	typOID uint32 // types the cursor's text parameter
}

// style is how test_decoding or wal2json prints a value of a column.
type style uint8

const (
	plain   style = iota // a string, as the output function prints it
	number               // unquoted; wal2json prints NaN and ±Infinity as null
	boolean              // true or false, not t or f
	bytea                // wal2json drops the \x
)

// Built-in type OIDs the plugins print specially. They switch on the
// column's own type, so a domain over one of them is a string.
const (
	oidBool    = 16
	oidBytea   = 17
	oidInt8    = 20
	oidInt2    = 21
	oidInt4    = 23
	oidOID     = 26
	oidFloat4  = 700
	oidFloat8  = 701
	oidNumeric = 1700
	// firstUserOID is FirstGenbkiObjectId: pgoutput describes the types
	// from there on in Type messages.
	firstUserOID = 10000
)

const tableQuery = `SELECT c.oid, n.nspname, c.relname,
	quote_ident(n.nspname) || '.' || quote_ident(c.relname),
	c.relkind::text, c.relreplident::text, c.reltuples::float8, c.relpages::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = $1::regclass`

// columnQuery lists the live columns with their type as test_decoding
// (format_type_be) and wal2json (format_type_with_typemod) print it, the
// base type pgoutput's Type message names (a domain's, followed down to
// a type that is not a domain, pg_catalog sent as ""), and whether the
// column is in the primary key and in the replica identity.
const columnQuery = `SELECT a.attname, a.atttypid::bigint, a.atttypmod, a.attgenerated::text,
	format_type(a.atttypid, NULL), format_type(a.atttypid, a.atttypmod),
	coalesce(nullif(b.nspname, 'pg_catalog'), ''), coalesce(b.typname, ''),
	coalesce(a.attnum = ANY(pk.indkey), false),
	CASE c.relreplident
		WHEN 'f' THEN true
		WHEN 'd' THEN coalesce(a.attnum = ANY(pk.indkey), false)
		WHEN 'i' THEN coalesce(a.attnum = ANY(ri.indkey), false)
		ELSE false END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_index pk ON pk.indrelid = c.oid AND pk.indisprimary
LEFT JOIN pg_index ri ON ri.indrelid = c.oid AND ri.indisreplident
LEFT JOIN LATERAL (
	WITH RECURSIVE d(oid) AS (
		SELECT a.atttypid
		UNION ALL
		SELECT t.typbasetype FROM d JOIN pg_type t ON t.oid = d.oid WHERE t.typtype = 'd'
	)
	SELECT n.nspname, t.typname FROM d
	JOIN pg_type t ON t.oid = d.oid JOIN pg_namespace n ON n.oid = t.typnamespace
	WHERE t.typtype <> 'd'
) b ON true
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`

// maxTuplesPerPage is MaxHeapTuplesPerPage for 8 kB pages: the most rows a
// block can hold, assumed when the table has no statistics yet so that a
// keyless chunk is small rather than huge.
const maxTuplesPerPage = 291

// Describe loads what reading name and shaping its rows as plugin's
// events needs. key is the table's key (catalog.Key's columns) in key
// order, empty for a table without one, which is then read by blocks.
// Only ordinary tables can be read: a partitioned table's changes are
// decoded under its partitions' names, so its partitions are read instead.
func Describe(ctx context.Context, conn *pgx.Conn, name catalog.Name, key []string, plugin decode.Plugin) (*Table, error) {
	t, err := describe(ctx, conn, name, key, plugin)
	if err != nil {
		return nil, fmt.Errorf("describe %s for a snapshot: %w", name, err)
	}
	return t, nil
}

func describe(ctx context.Context, conn *pgx.Conn, name catalog.Name, key []string, plugin decode.Plugin) (*Table, error) {
	switch plugin {
	case decode.TestDecoding, decode.Wal2JSON, decode.PGOutput:
	default:
		return nil, fmt.Errorf("unknown plugin %v", plugin)
	}
	t := &Table{name: name, plugin: plugin, quoted: pgx.Identifier{name.Schema, name.Table}.Sanitize()}
	var (
		oid             uint32
		quoted          string
		kind, replident string
		tuples          float64
		pages           int64
	)
	err := conn.QueryRow(ctx, tableQuery, t.quoted).Scan(&oid, &t.table.Schema, &t.table.Name, &quoted, &kind, &replident, &tuples, &pages)
	if err != nil {
		return nil, err
	}
	if kind != "r" {
		return nil, fmt.Errorf("relkind %q: only ordinary tables can be read", kind)
	}
	t.relID = oid
	switch plugin {
	case decode.TestDecoding:
		t.table.Raw = quoted
	default:
		t.table.Raw = t.table.Schema + "." + t.table.Name
	}
	t.rowsPerPage = maxTuplesPerPage
	if pages > 0 && tuples > 0 {
		t.rowsPerPage = max(tuples/float64(pages), 1)
	}

	rows, err := conn.Query(ctx, columnQuery, oid)
	if err != nil {
		return nil, fmt.Errorf("columns: %w", err)
	}
	defer rows.Close()
	types := map[string]uint32{} // every column's, for the key
	var typeMsgs [][]byte
	for rows.Next() {
		var (
			c                  column
			typ                int64
			generated          string
			plainType, withMod string
			baseNS, baseName   string
			inPK               bool
		)
		if err := rows.Scan(&c.name, &typ, &c.typmod, &generated, &plainType, &withMod, &baseNS, &baseName, &inPK, &c.identity); err != nil {
			return nil, fmt.Errorf("columns: %w", err)
		}
		c.typOID = uint32(typ)
		types[c.name] = c.typOID
		if !t.prints(generated) {
			continue
		}
		if inPK {
			t.primaryKey = append(t.primaryKey, c.name)
		}
		switch plugin {
		case decode.TestDecoding:
			c.typ, c.style = plainType, styleOf(c.typOID)
		case decode.Wal2JSON:
			c.typ, c.style = withMod, styleOf(c.typOID)
		case decode.PGOutput:
			if c.typOID >= firstUserOID {
				typeMsgs = append(typeMsgs, typeMessage(c.typOID, baseNS, baseName))
			}
		}
		t.cols = append(t.cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("columns: %w", err)
	}
	for _, k := range key {
		oid, ok := types[k]
		if !ok {
			return nil, fmt.Errorf("key column %q is not a column of the table", k)
		}
		t.key = append(t.key, keyColumn{name: k, typOID: oid})
	}
	if plugin == decode.PGOutput {
		t.preamble = append(typeMsgs, relationMessage(oid, t.table, replident, t.cols))
	}
	return t, nil
}

// prints says whether the plugin prints a column generated as g. A stored
// generated column is in the WAL record, which test_decoding and wal2json
// print whole; pgoutput leaves it out.
func (t *Table) prints(g string) bool {
	switch g {
	case "":
		return true
	case "s":
		return t.plugin != decode.PGOutput
	}
	return false
}

func styleOf(typ uint32) style {
	switch typ {
	case oidInt2, oidInt4, oidInt8, oidOID, oidFloat4, oidFloat8, oidNumeric:
		return number
	case oidBool:
		return boolean
	case oidBytea:
		return bytea
	}
	return plain
}

// Name is the table described.
// sameShape reports whether u prints the same columns, of the same types,
// as t: rows read with one are shaped as the other's would be.
func (t *Table) sameShape(u *Table) bool {
	return t.table == u.table && t.relID == u.relID && slices.Equal(t.cols, u.cols) &&
		slices.Equal(t.key, u.key) && slices.Equal(t.primaryKey, u.primaryKey)
}

func (t *Table) Name() catalog.Name { return t.name }

// Keyless reports whether the table is read by blocks, without a key.
func (t *Table) Keyless() bool { return len(t.key) == 0 }

// Estimate is the table's row count as the planner estimates it: the
// rows a page held when it was last analyzed or vacuumed (pg_class), times
// the pages it has now, so that a table loaded since is not taken for
// small; -1 when it has never been analyzed or vacuumed (reltuples -1
// from PostgreSQL 14, 0 rows on 0 pages before). For progress, and to
// tell whether the rows left are worth cutting into spans.
func (t *Table) Estimate(ctx context.Context, conn *pgx.Conn) (int64, error) {
	var tuples, pages, now float64
	err := conn.QueryRow(ctx, `SELECT reltuples::float8, relpages::float8,
		pg_relation_size(oid)::float8 / current_setting('block_size')::float8
		FROM pg_class WHERE oid = $1::regclass`, t.quoted).Scan(&tuples, &pages, &now)
	if errors.Is(err, pgx.ErrNoRows) {
		err = errors.New("no such table")
	}
	if err != nil {
		return 0, fmt.Errorf("estimate the rows of %s: %w", t.name, err)
	}
	switch {
	case tuples < 0, tuples == 0 && pages == 0:
		return -1, nil
	case pages == 0:
		return int64(tuples), nil
	}
	return int64(tuples/pages*now + 0.5), nil
}

// selectList is the columns to read, quoted: the printed ones, then the
// key's, which the cursor is taken from (a key column may not be printed).
func (t *Table) selectList() string {
	var b strings.Builder
	for i, c := range t.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pgx.Identifier{c.name}.Sanitize())
	}
	for i, k := range t.key {
		if i > 0 || len(t.cols) > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pgx.Identifier{k.name}.Sanitize())
	}
	return b.String()
}

// keyList is the key's columns, quoted, comma-separated.
func (t *Table) keyList() string {
	parts := make([]string, len(t.key))
	for i, k := range t.key {
		parts[i] = pgx.Identifier{k.name}.Sanitize()
	}
	return strings.Join(parts, ", ")
}

// params is "$from, $from+1, ..." for n parameters.
func params(from, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = "$" + strconv.Itoa(from+i)
	}
	return strings.Join(parts, ", ")
}
