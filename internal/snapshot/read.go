package snapshot

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Chunk is what one Read gives.
type Chunk struct {
	// Rows are the chunk's rows, in key order for a table with a key.
	Rows *Rows
	// Next is the cursor to read on from: the last row's key values as
	// Postgres prints them (the cursor passed in when the chunk is
	// empty), or for a keyless table the next block number. Match rows to
	// changes by format.KeyText of the rows, not by Next: a plugin may
	// print a key value otherwise than Postgres does (wal2json: a NaN as
	// null, a boolean as true).
	Next []string
	// Done: the table is read to its end.
	Done bool
}

// Limit bounds a chunk.
type Limit struct {
	// Rows: at most this many rows by key, or for a keyless table every
	// row of a range of blocks sized to hold about this many.
	Rows int
	// Bytes: a keyed table's chunk ends at the row with which what the
	// rows hold (Rows.Size) reaches it, if one does before Rows (the rest
	// of the statement's rows are read and dropped); 0 for no bound.
	// Keyless chunks are not cut: Rows sizes their block range.
	Bytes int
	// Size is the text the caller expects (0: unknown), which sizes the
	// buffer.
	Size int
	// recycled are the rows of a chunk done with, whose buffers the
	// chunk's rows take over (nil: new ones).
	recycled *Rows
}

func (lim Limit) rows(t *Table, n int) *Rows {
	if lim.recycled != nil {
		return lim.recycled.reuse(t, n, lim.Size)
	}
	return newRows(t, n, lim.Size)
}

// Read reads the chunk after the cursor after (nil: from the start),
// within lim. It is one statement, run in its own transaction. A table
// dropped since Describe is an error naming it.
func (t *Table) Read(ctx context.Context, conn *pgx.Conn, after []string, lim Limit) (Chunk, error) {
	return t.readRange(ctx, conn, after, nil, lim)
}

// readRange is Read of the span (after, upto] (nil: the table's end),
// whose Done says whether it read the span to its end.
func (t *Table) readRange(ctx context.Context, conn *pgx.Conn, after, upto []string, lim Limit) (Chunk, error) {
	pl, err := t.plan(after, upto, lim)
	if err == nil {
		err = pl.collect(conn.PgConn().ExecParams(ctx, pl.sql, pl.args, pl.oids, nil, nil))
	}
	if err != nil {
		return Chunk{}, t.readErr(after, err)
	}
	c, err := pl.chunk()
	if err != nil {
		return Chunk{}, t.readErr(after, err)
	}
	return c, nil
}

func (t *Table) readErr(after []string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
		err = fmt.Errorf("the table no longer exists: %w", err)
	}
	return fmt.Errorf("read chunk of %s after %q: %w", t.name, after, err)
}

// chunkPlan is the statement that reads a chunk, and what makes a Chunk
// of its rows.
type chunkPlan struct {
	statement
	want  int // columns a row has
	add   func(vals [][]byte) error
	chunk func() (Chunk, error) // once every row is added
}

// collect adds the rows of the plan's statement, and closes rr.
func (pl *chunkPlan) collect(rr *pgconn.ResultReader) error {
	for rr.NextRow() {
		vals := rr.Values()
		if len(vals) != pl.want {
			_, _ = rr.Close()
			return fmt.Errorf("%d columns in a row, want %d: did the table change?", len(vals), pl.want)
		}
		if err := pl.add(vals); err != nil {
			_, _ = rr.Close()
			return err
		}
	}
	_, err := rr.Close()
	return err
}

// plan is the statement reading the chunk of the span (after, upto]
// (nil: the table's start, its end), whose Done says whether it read the
// span to its end.
func (t *Table) plan(after, upto []string, lim Limit) (*chunkPlan, error) {
	n := lim.Rows
	if n <= 0 {
		return nil, fmt.Errorf("chunk size %d: want at least 1", n)
	}
	if t.Keyless() {
		return t.planBlocks(after, upto, n, lim)
	}
	for _, c := range [][]string{after, upto} {
		if c != nil && len(c) != len(t.key) {
			return nil, fmt.Errorf("cursor of %d values for a key of %d columns", len(c), len(t.key))
		}
	}
	pl := &chunkPlan{want: len(t.cols) + len(t.key)}
	pl.sql = "SELECT " + t.selectList() + " FROM ONLY " + t.quoted // not an inheritance child's rows, decoded under its own name
	// A row comparison orders as ORDER BY does, and a btree index on the
	// key serves both.
	var where []string
	if after != nil {
		where = append(where, t.keyBound(&pl.statement, ">", after))
	}
	if upto != nil {
		where = append(where, t.keyBound(&pl.statement, "<=", upto))
	}
	if len(where) > 0 {
		pl.sql += " WHERE " + strings.Join(where, " AND ")
	}
	pl.sql += " ORDER BY " + t.keyList() + " LIMIT " + strconv.Itoa(n)
	rows := lim.rows(t, n)
	full := false
	pl.add = func(vals [][]byte) error {
		if full {
			return nil
		}
		err := rows.add(vals)
		full = lim.Bytes > 0 && rows.Size() >= lim.Bytes
		return err
	}
	pl.chunk = func() (Chunk, error) {
		c := Chunk{Rows: rows, Next: after, Done: !full && rows.Len() < n}
		if rows.Len() > 0 {
			c.Next = rows.keyText(rows.Len() - 1)
		}
		return c, nil
	}
	return pl, nil
}

// keyBound is the condition (key) op (values), and adds the values to
// st's parameters, typed as the key's columns.
func (t *Table) keyBound(st *statement, op string, values []string) string {
	cond := "(" + t.keyList() + ") " + op + " (" + params(len(st.args)+1, len(t.key)) + ")"
	for i, k := range t.key {
		st.args = append(st.args, []byte(values[i]))
		st.oids = append(st.oids, k.typOID)
	}
	return cond
}

// planBlocks reads the rows of a range of blocks from the cursor's, and
// in the same statement the table's size in blocks, which says whether
// the range reached the end. A TID range scan (PostgreSQL 14) reads only
// those blocks.
func (t *Table) planBlocks(after, upto []string, n int, lim Limit) (*chunkPlan, error) {
	from, err := blockCursor(after, 0)
	if err != nil {
		return nil, err
	}
	end, err := blockCursor(upto, math.MaxInt64)
	if err != nil {
		return nil, err
	}
	blocks := int64(math.Ceil(float64(n) / t.rowsPerPage))
	blocks = max(blocks, 1)
	to := min(from+blocks, end)
	list := t.selectList()
	nulls := ""
	for range t.cols {
		nulls += ", NULL"
	}
	if list != "" {
		list = ", " + list
	}
	// The size's row is told from the table's by its first column, which
	// is NULL for the table's rows.
	pl := &chunkPlan{want: 1 + len(t.cols) + len(t.key)}
	pl.sql = "SELECT NULL::bigint" + list + " FROM ONLY " + t.quoted +
		" WHERE ctid >= $1::tid AND ctid < $2::tid" +
		" UNION ALL SELECT pg_relation_size($3::regclass) / current_setting('block_size')::bigint" + nulls
	pl.args = [][]byte{
		[]byte("(" + strconv.FormatInt(from, 10) + ",0)"),
		[]byte("(" + strconv.FormatInt(min(to, math.MaxUint32), 10) + ",0)"),
		[]byte(t.quoted),
	}
	rows := lim.rows(t, n)
	total := int64(-1) // the table's blocks
	pl.add = func(vals [][]byte) error {
		if vals[0] == nil {
			return rows.add(vals[1:])
		}
		var err error
		if total, err = strconv.ParseInt(string(vals[0]), 10, 64); err != nil {
			return fmt.Errorf("table size %q: %w", vals[0], err)
		}
		return nil
	}
	pl.chunk = func() (Chunk, error) {
		if total < 0 {
			return Chunk{}, errors.New("the table's size is missing from the result")
		}
		return Chunk{Rows: rows, Next: []string{strconv.FormatInt(to, 10)}, Done: to >= total || to >= end}, nil
	}
	return pl, nil
}

// blockCursor reads a block cursor (none: def).
func blockCursor(c []string, def int64) (int64, error) {
	switch len(c) {
	case 0:
		return def, nil
	case 1:
		b, err := strconv.ParseInt(c[0], 10, 64)
		if err != nil || b < 0 {
			return 0, fmt.Errorf("cursor %q: want a block number", c[0])
		}
		return b, nil
	default:
		return 0, fmt.Errorf("cursor of %d values for a table read by blocks", len(c))
	}
}
