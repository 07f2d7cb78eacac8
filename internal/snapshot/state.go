package snapshot

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
)

// The state of every table's snapshot lives in a small table of the source
// database (--snapshot-table), one row per slot and table, rather than
// beside the daemon: it survives the daemon, its machine and its disk, a
// second daemon standing by for the slot reads the same rows, and a
// request for a snapshot is a row that any connection allowed to write it
// can add (pg2kinesis snapshot --table). A row's last_key moves only once
// Kinesis has acknowledged the chunk that ends there, so a restart resumes
// after it and re-sends at most the chunks that were in flight.
//
// Its changes go through the slot like any other table's: the stream
// skips them (the change handler asks Config.StateTable).

// States of a table's snapshot.
const (
	Pending = "pending" // asked for, not started
	Running = "running" // started: last_key is where it resumes
	Done    = "done"
	Failed  = "failed" // an error the user must fix (a grant, say): asked for again, it starts over
)

// StateTable names the state table; ParseStateTable reads --snapshot-table.
func ParseStateTable(s string) (catalog.Name, error) {
	schema, table, ok := strings.Cut(s, ".")
	if !ok {
		schema, table = "public", s
	}
	if schema == "" || table == "" || strings.Contains(table, ".") {
		return catalog.Name{}, fmt.Errorf("--snapshot-table %q: want TABLE or SCHEMA.TABLE", s)
	}
	return catalog.Name{Schema: schema, Table: table}, nil
}

func ident(n catalog.Name) string { return pgx.Identifier{n.Schema, n.Table}.Sanitize() }

// CreateState creates the state table if it is missing. It needs CREATE on
// its schema (the docs list the grants).
func CreateState(ctx context.Context, conn *pgx.Conn, t catalog.Name) error {
	// Looked for first: CREATE TABLE IF NOT EXISTS asks for CREATE on the
	// schema even when the table is there, which a role granted only the
	// table (docs/snapshots.md, Grants) does not have.
	if ok, err := Exists(ctx, conn, t); err != nil || ok {
		return err
	}
	_, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+ident(t)+` (
	slot text NOT NULL,
	table_schema text NOT NULL,
	table_name text NOT NULL,
	state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'failed')),
	error text,
	last_key text[],
	rows_published bigint NOT NULL DEFAULT 0,
	chunks bigint NOT NULL DEFAULT 0,
	requested_at timestamptz NOT NULL DEFAULT now(),
	started_at timestamptz,
	finished_at timestamptz,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (slot, table_schema, table_name))`)
	if err != nil {
		return fmt.Errorf("create the snapshot state table %s (it needs CREATE on schema %q; or create it beforehand as docs/snapshots.md shows): %w",
			t, t.Schema, err)
	}
	return nil
}

// Progress is one table's row of the state table.
type Progress struct {
	Table   catalog.Name
	State   string
	LastKey []string // nil before the first acknowledged chunk
	Rows    int64
	Chunks  int64
	Error   string // why it failed
}

// LoadState reads the rows of slot.
func LoadState(ctx context.Context, conn *pgx.Conn, t catalog.Name, slot string) ([]Progress, error) {
	rows, err := conn.Query(ctx, `SELECT table_schema, table_name, state, last_key, rows_published, chunks, coalesce(error, '')
		FROM `+ident(t)+` WHERE slot = $1 ORDER BY requested_at, table_schema, table_name`, slot)
	if err != nil {
		return nil, fmt.Errorf("read the snapshot state from %s: %w", t, err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Progress, error) {
		var p Progress
		err := r.Scan(&p.Table.Schema, &p.Table.Table, &p.State, &p.LastKey, &p.Rows, &p.Chunks, &p.Error)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the snapshot state from %s: %w", t, err)
	}
	return ps, nil
}

// Request asks for a snapshot of tables for slot, from their start: a
// table already snapshotted, or being snapshotted, starts over.
func Request(ctx context.Context, conn *pgx.Conn, t catalog.Name, slot string, tables []catalog.Name) error {
	for _, n := range tables {
		_, err := conn.Exec(ctx, `INSERT INTO `+ident(t)+` (slot, table_schema, table_name) VALUES ($1, $2, $3)
			ON CONFLICT (slot, table_schema, table_name) DO UPDATE SET state = 'pending', last_key = NULL,
				rows_published = 0, chunks = 0, requested_at = now(), started_at = NULL, finished_at = NULL, updated_at = now(),
				error = NULL`,
			slot, n.Schema, n.Table)
		if err != nil {
			return fmt.Errorf("request a snapshot of %s in %s: %w", n, t, err)
		}
	}
	return nil
}

// ForgetSlot removes what slot snapshotted, before the slot is created
// anew: a new slot has snapshotted nothing, whatever a slot of the same
// name did before. Requests not yet started stay.
func ForgetSlot(ctx context.Context, connect func(context.Context) (*pgx.Conn, error), t catalog.Name, slot string) error {
	conn, err := connect(ctx)
	if err != nil {
		return fmt.Errorf("reset the snapshot state of slot %q: %w", slot, err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if ok, err := Exists(ctx, conn, t); err != nil || !ok {
		return err
	}
	if _, err := conn.Exec(ctx, `DELETE FROM `+ident(t)+` WHERE slot = $1 AND state <> 'pending'`, slot); err != nil {
		return fmt.Errorf("reset the snapshot state of slot %q in %s: %w", slot, t, err)
	}
	return nil
}

// Advance records that the chunks of table up to lastKey are delivered
// (rows and chunks more of them), and whether that finished the table.
func Advance(ctx context.Context, conn *pgx.Conn, t catalog.Name, slot string, table catalog.Name,
	lastKey []string, rows, chunks int64, done bool) error {
	state := Running
	if done {
		state = Done
	}
	tag, err := conn.Exec(ctx, `UPDATE `+ident(t)+` SET state = $4, last_key = $5,
			rows_published = rows_published + $6, chunks = chunks + $7, updated_at = now(),
			started_at = coalesce(started_at, now()),
			finished_at = CASE WHEN $4 = 'done' THEN now() END
		WHERE slot = $1 AND table_schema = $2 AND table_name = $3 AND state <> 'pending'`,
		slot, table.Schema, table.Table, state, lastKey, rows, chunks)
	if err != nil {
		return fmt.Errorf("record the snapshot progress of %s in %s: %w", table, t, err)
	}
	if tag.RowsAffected() == 0 {
		return errRequestedAgain
	}
	return nil
}

// Fail records that a table's snapshot failed with an error the user must
// fix; its last_key stays, and a request starts it over.
func Fail(ctx context.Context, conn *pgx.Conn, t catalog.Name, slot string, table catalog.Name, cause error) error {
	_, err := conn.Exec(ctx, `UPDATE `+ident(t)+` SET state = 'failed', error = $4, updated_at = now()
		WHERE slot = $1 AND table_schema = $2 AND table_name = $3`, slot, table.Schema, table.Table, cause.Error())
	if err != nil {
		return fmt.Errorf("record the failed snapshot of %s in %s: %w", table, t, err)
	}
	return nil
}

// Skip records a table that cannot be read (gone, or not published by the
// run) as done, whatever its state.
func Skip(ctx context.Context, conn *pgx.Conn, t catalog.Name, slot string, table catalog.Name) error {
	_, err := conn.Exec(ctx, `UPDATE `+ident(t)+` SET state = 'done', finished_at = now(), updated_at = now()
		WHERE slot = $1 AND table_schema = $2 AND table_name = $3`, slot, table.Schema, table.Table)
	if err != nil {
		return fmt.Errorf("record the snapshot of %s as skipped in %s: %w", table, t, err)
	}
	return nil
}

// Start marks a pending table's snapshot running, from its start.
func Start(ctx context.Context, conn *pgx.Conn, t catalog.Name, slot string, table catalog.Name) error {
	_, err := conn.Exec(ctx, `UPDATE `+ident(t)+` SET state = 'running', started_at = now(), updated_at = now()
		WHERE slot = $1 AND table_schema = $2 AND table_name = $3 AND state = 'pending'`,
		slot, table.Schema, table.Table)
	if err != nil {
		return fmt.Errorf("start the snapshot of %s in %s: %w", table, t, err)
	}
	return nil
}

// errRequestedAgain: the table was asked for again while it was being
// snapshotted; its worker stops and the new request starts it over.
var errRequestedAgain = errors.New("snapshot requested again")

// Ensure adds a pending row for each of tables that has none: an initial
// snapshot covers the tables never snapshotted for slot, and leaves alone
// those done or under way.
func Ensure(ctx context.Context, conn *pgx.Conn, t catalog.Name, slot string, tables []catalog.Name) error {
	for _, n := range tables {
		_, err := conn.Exec(ctx, `INSERT INTO `+ident(t)+` (slot, table_schema, table_name) VALUES ($1, $2, $3)
			ON CONFLICT (slot, table_schema, table_name) DO NOTHING`, slot, n.Schema, n.Table)
		if err != nil {
			return fmt.Errorf("record the initial snapshot of %s in %s: %w", n, t, err)
		}
	}
	return nil
}

// Resolve names the tables given as [schema.]table, as SQL would read them
// (quoted identifiers, the search_path), and checks that they exist.
func Resolve(ctx context.Context, conn *pgx.Conn, names []string) ([]catalog.Name, error) {
	out := make([]catalog.Name, 0, len(names))
	for _, s := range names {
		var n catalog.Name
		var kind string
		err := conn.QueryRow(ctx, `SELECT n.nspname, c.relname, c.relkind FROM pg_catalog.pg_class c
			JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')`, s).Scan(&n.Schema, &n.Table, &kind)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("no table %q in the database (name it as SQL would: schema.table, with double quotes around a name that needs them)", s)
		}
		if err != nil {
			return nil, fmt.Errorf("look table %q up: %w", s, err)
		}
		if kind == "p" {
			// Its changes are decoded under its partitions' names.
			return nil, fmt.Errorf("table %s is partitioned: ask for a snapshot of its partitions", n)
		}
		out = append(out, n)
	}
	return out, nil
}

// Exists reports whether table t (the state table, or one being read)
// exists.
func Exists(ctx context.Context, conn *pgx.Conn, t catalog.Name) (bool, error) {
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ident(t)).Scan(&ok); err != nil {
		return false, fmt.Errorf("look table %s up: %w", t, err)
	}
	return ok, nil
}
