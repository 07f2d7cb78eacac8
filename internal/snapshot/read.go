package snapshot

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

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
}

// Read reads the chunk after the cursor after (nil: from the start),
// within lim. It is one statement, run in its own transaction. A table
// dropped since Describe is an error naming it.
func (t *Table) Read(ctx context.Context, conn *pgx.Conn, after []string, lim Limit) (Chunk, error) {
	c, err := t.read(ctx, conn, after, lim)
	if err != nil {
		return Chunk{}, fmt.Errorf("read chunk of %s after %q: %w", t.name, after, err)
	}
	return c, nil
}

func (t *Table) read(ctx context.Context, conn *pgx.Conn, after []string, lim Limit) (Chunk, error) {
	n := lim.Rows
	if n <= 0 {
		return Chunk{}, fmt.Errorf("chunk size %d: want at least 1", n)
	}
	if t.Keyless() {
		return t.readBlocks(ctx, conn, after, n, lim.Size)
	}
	if after != nil && len(after) != len(t.key) {
		return Chunk{}, fmt.Errorf("cursor of %d values for a key of %d columns", len(after), len(t.key))
	}
	sql := "SELECT " + t.selectList() + " FROM ONLY " + t.quoted // not an inheritance child's rows, decoded under its own name
	var (
		args [][]byte
		oids []uint32
	)
	if after != nil {
		// A row comparison orders as ORDER BY does, and a btree index on
		// the key serves both.
		sql += " WHERE (" + t.keyList() + ") > (" + params(1, len(t.key)) + ")"
		for i, k := range t.key {
			args = append(args, []byte(after[i]))
			oids = append(oids, k.typOID)
		}
	}
	sql += " ORDER BY " + t.keyList() + " LIMIT " + strconv.Itoa(n)
	rows := newRows(t, n, lim.Size)
	full := false
	err := t.query(ctx, conn, sql, args, oids, 0, func(vals [][]byte) error {
		if full {
			return nil
		}
		err := rows.add(vals)
		full = lim.Bytes > 0 && rows.Size() >= lim.Bytes
		return err
	})
	if err != nil {
		return Chunk{}, err
	}
	c := Chunk{Rows: rows, Next: after, Done: !full && rows.Len() < n}
	if rows.Len() > 0 {
		c.Next = rows.keyText(rows.Len() - 1)
	}
	return c, nil
}

// readBlocks reads the rows of a range of blocks from the cursor's, and
// in the same statement the table's size in blocks, which says whether
// the range reached the end. A TID range scan (PostgreSQL 14) reads only
// those blocks.
func (t *Table) readBlocks(ctx context.Context, conn *pgx.Conn, after []string, n, size int) (Chunk, error) {
	var from int64
	switch len(after) {
	case 0:
	case 1:
		var err error
		if from, err = strconv.ParseInt(after[0], 10, 64); err != nil || from < 0 {
			return Chunk{}, fmt.Errorf("cursor %q: want a block number", after[0])
		}
	default:
		return Chunk{}, fmt.Errorf("cursor of %d values for a table read by blocks", len(after))
	}
	blocks := int64(math.Ceil(float64(n) / t.rowsPerPage))
	blocks = max(blocks, 1)
	to := from + blocks
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
	sql := "SELECT NULL::bigint" + list + " FROM ONLY " + t.quoted +
		" WHERE ctid >= $1::tid AND ctid < $2::tid" +
		" UNION ALL SELECT pg_relation_size($3::regclass) / current_setting('block_size')::bigint" + nulls
	args := [][]byte{
		[]byte("(" + strconv.FormatInt(from, 10) + ",0)"),
		[]byte("(" + strconv.FormatInt(min(to, math.MaxUint32), 10) + ",0)"),
		[]byte(t.quoted),
	}
	rows := newRows(t, n, size)
	total := int64(-1) // the table's blocks
	err := t.query(ctx, conn, sql, args, nil, 1, func(vals [][]byte) error {
		if vals[0] == nil {
			return rows.add(vals[1:])
		}
		var err error
		if total, err = strconv.ParseInt(string(vals[0]), 10, 64); err != nil {
			return fmt.Errorf("table size %q: %w", vals[0], err)
		}
		return nil
	})
	if err != nil {
		return Chunk{}, err
	}
	if total < 0 {
		return Chunk{}, errors.New("the table's size is missing from the result")
	}
	return Chunk{Rows: rows, Next: []string{strconv.FormatInt(to, 10)}, Done: to >= total}, nil
}

// query runs one statement with text parameters and results, and hands
// each row's values to add, which copies what it keeps: they alias the
// connection's buffer. extra is the number of leading non-value columns
// (readBlocks' size).
func (t *Table) query(ctx context.Context, conn *pgx.Conn, sql string, args [][]byte, oids []uint32, extra int, add func(vals [][]byte) error) error {
	rr := conn.PgConn().ExecParams(ctx, sql, args, oids, nil, nil)
	want := extra + len(t.cols) + len(t.key)
	for rr.NextRow() {
		vals := rr.Values()
		if len(vals) != want {
			_, _ = rr.Close()
			return fmt.Errorf("%d columns in a row, want %d: did the table change?", len(vals), want)
		}
		if err := add(vals); err != nil {
			_, _ = rr.Close()
			return err
		}
	}
	if _, err := rr.Close(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
			return fmt.Errorf("the table no longer exists: %w", err)
		}
		return err
	}
	return nil
}
