package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/checkpoint"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/filter"
	"github.com/pg2kinesis/pg2kinesis/internal/format"
	"github.com/pg2kinesis/pg2kinesis/internal/snapshot"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
)

// The stream's side of a snapshot (see snapshot.Exchange): the watermarks
// open and close each chunk's window, the changes read in between name
// the rows the chunk must not publish, and the rows left are published at
// the high watermark, in its transaction, as reads.

// watermark handles a snapshot watermark read in the stream.
func (h *changeHandler) watermark(ctx context.Context, ev *decode.Event) error {
	if h.snap == nil {
		return nil
	}
	m, err := snapshot.ParseMark(ev.MessageContent)
	if err != nil {
		h.log.Debug("a logical message with the snapshot prefix that is not a watermark", "lsn", ev.LSN, "err", err)
		return nil
	}
	if !m.High {
		h.snap.Open(m)
		return nil
	}
	c, rows := h.snap.Take(m, format.KeyText)
	if c == nil {
		return nil
	}
	xid, lsn := ev.XID, ev.LSN
	if xid == 0 {
		xid = h.txXID
	}
	for i := range rows {
		r := &rows[i]
		r.XID, r.LSN, r.CommitLSN, r.CommitTime = xid, lsn, h.commitLSN, h.commitTime
		if err := h.publish(ctx, r, r.Table); err != nil {
			return err
		}
		if n := i + 1; n%statusEvery == 0 {
			// A chunk is one message's worth of work: keep the
			// connection alive through a long one.
			if err := h.src.StatusIfDue(); err != nil {
				return err
			}
		}
	}
	c.Published = len(rows)
	return nil
}

// touch tells the open windows which rows ev changed.
func (h *changeHandler) touch(ev *decode.Event) {
	if h.snap == nil || !h.snap.Watching() {
		return
	}
	if ev.Op == decode.Truncate {
		for _, t := range ev.Truncated {
			h.snap.Touch(catalog.Name{Schema: t.Schema, Table: t.Name}, spoil)
		}
		return
	}
	h.snap.Touch(catalog.Name{Schema: ev.Table.Schema, Table: ev.Table.Name}, func(cols []string) ([]string, bool) {
		return changedKeys(ev, cols)
	})
}

// spoil is a change that names no row: a truncate.
func spoil([]string) ([]string, bool) { return nil, false }

// changedKeys is the text of the keys by cols of the rows ev changed: the
// new row's and the old one's (an update that changes the key moves the
// row from one to the other); ok is false when it carries neither.
func changedKeys(ev *decode.Event, cols []string) (keys []string, ok bool) {
	for _, row := range [][]decode.Column{ev.New, ev.Old} {
		if len(cols) == 0 || !hasAll(row, cols) {
			continue
		}
		keys = append(keys, format.KeyText(&decode.Event{New: row}, cols))
	}
	return keys, len(keys) > 0
}

func hasAll(row []decode.Column, cols []string) bool {
	for _, c := range cols {
		if !named(row, c) {
			return false
		}
	}
	return true
}

// isState reports whether t is the snapshot state table, whose changes
// are pg2kinesis' own bookkeeping and never published.
func (h *changeHandler) isState(t decode.Table) bool {
	return h.stateTable.Table != "" && t.Name == h.stateTable.Table && t.Schema == h.stateTable.Schema
}

// newSnapshots is the snapshot runner of a run, which places its chunks
// in the stream through h; stop ends the run cleanly (initial_only).
func newSnapshots(cfg Config, h *changeHandler, src *source.Source, tracker *checkpoint.Tracker,
	keys *catalog.Cache, flt *filter.Filter, stop func(), log *slog.Logger) *snapshot.Runner {
	x := snapshot.NewExchange(cfg.Source.Slot, snapshot.NewRun())
	h.snap = x
	return snapshot.New(snapshot.Config{
		Mode: cfg.Snapshot.Mode, Slot: cfg.Source.Slot, Plugin: cfg.Source.Plugin, StateTable: cfg.Snapshot.Table,
		ChunkRows: cfg.Snapshot.ChunkRows, Workers: cfg.Snapshot.Workers, Poll: cfg.Snapshot.Poll,
		Connect: cfg.Connect,
		Targets: func(ctx context.Context) ([]catalog.Name, error) {
			return snapshotTargets(ctx, cfg, keys, flt)
		},
		KeyOf: func(ctx context.Context, n catalog.Name) ([]string, bool, error) {
			k, st, err := keys.Lookup(ctx, n)
			return k.Columns, st != catalog.Unknown, err
		},
		Flushed: tracker.Flush, CreatedSlot: src.CreatedSlot, Finished: stop, Logger: log, Transient: source.Transient,
		Metrics: cfg.Metrics.Snapshot,
	}, x)
}

// snapshotTargets lists the tables an initial snapshot covers: those whose
// reads the run publishes (--table-pat, --operations, a key or a format
// that publishes keyless tables) and, with pgoutput, that its publication
// has.
func snapshotTargets(ctx context.Context, cfg Config, keys *catalog.Cache, flt *filter.Filter) ([]catalog.Name, error) {
	if !flt.Op(decode.Read) {
		return nil, nil
	}
	if err := keys.Refresh(ctx); err != nil {
		return nil, err
	}
	var published map[catalog.Name]bool
	if cfg.Source.Plugin == decode.PGOutput {
		var err error
		if published, err = tablesOf(ctx, cfg, publicationTablesQuery, cmp.Or(cfg.Source.Publication, "pg2kinesis")); err != nil {
			return nil, fmt.Errorf("list the tables of publication %q: %w", cfg.Source.Publication, err)
		}
	}
	// A partitioned table is read through its partitions, under whose
	// names its changes are decoded.
	partitioned, err := tablesOf(ctx, cfg, partitionedQuery)
	if err != nil {
		return nil, fmt.Errorf("list the partitioned tables: %w", err)
	}
	var out []catalog.Name
	for _, n := range keys.Tables() {
		_, st, err := keys.Lookup(ctx, n)
		if err != nil {
			return nil, err
		}
		t := decode.Table{Schema: n.Schema, Name: n.Table, Raw: n.Schema + "." + n.Table}
		switch {
		case n == cfg.Snapshot.Table, !flt.Table(t), st == catalog.Unknown, partitioned[n]:
		case st == catalog.Keyless && !cfg.publishesKeyless():
		case published != nil && !published[n]:
		default:
			out = append(out, n)
		}
	}
	return out, nil
}

const (
	publicationTablesQuery = "SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = $1"
	partitionedQuery       = `SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'p'`
)

// tablesOf runs query, which lists tables by schema and name.
func tablesOf(ctx context.Context, cfg Config, query string, args ...any) (map[catalog.Name]bool, error) {
	conn, err := cfg.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	out := map[catalog.Name]bool{}
	var n catalog.Name
	_, err = pgx.ForEachRow(rows, []any{&n.Schema, &n.Table}, func() error {
		out[n] = true
		return nil
	})
	return out, err
}
