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
	c := h.snap.Take(m)
	if c == nil {
		return nil
	}
	xid, lsn := ev.XID, ev.LSN
	if xid == 0 {
		xid = h.txXID
	}
	published := h.stats.published.Load()
	n := 0
	err = c.Each(format.KeyText, func(r *decode.Event) error {
		r.XID, r.LSN, r.CommitLSN, r.CommitTime = xid, lsn, h.commitLSN, h.commitTime
		if err := h.publish(ctx, r, r.Table); err != nil {
			return err
		}
		if n++; n%statusEvery == 0 {
			// A chunk is one message's worth of work: keep the
			// connection alive through a long one. Lost, it is opened
			// again and the chunk, cut off, is read again (Restart).
			if err := h.src.StatusIfDue(); err != nil {
				return &source.RetryError{Err: err}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.Published = int(h.stats.published.Load() - published) // not those filtered or skipped
	return nil
}

// touch tells the open windows which rows ev changed.
func (h *changeHandler) touch(ev *decode.Event) {
	if h.snap == nil {
		return
	}
	h.snap.Changed()
	if !h.snap.Watching() {
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
func newSnapshots(cfg Config, h *changeHandler, tracker *checkpoint.Tracker,
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
		Unpublished: func(ctx context.Context, n catalog.Name) (string, error) {
			r, err := newReadable(ctx, cfg, keys, flt)
			if err != nil {
				return "", err
			}
			return r.unpublished(ctx, n)
		},
		KeyOf: func(ctx context.Context, n catalog.Name) ([]string, bool, error) {
			k, st, err := keys.Lookup(ctx, n)
			return k.Columns, st != catalog.Unknown, err
		},
		Flushed: tracker.Flush, Finished: stop, Logger: log, Transient: source.Transient,
		Metrics: cfg.Metrics.Snapshot,
	}, x)
}

// snapshotTargets lists the tables an initial snapshot covers: those whose
// reads the run publishes (see readable).
func snapshotTargets(ctx context.Context, cfg Config, keys *catalog.Cache, flt *filter.Filter) ([]catalog.Name, error) {
	if err := keys.Refresh(ctx); err != nil {
		return nil, err
	}
	r, err := newReadable(ctx, cfg, keys, flt)
	if err != nil {
		return nil, err
	}
	var out []catalog.Name
	for _, n := range keys.Tables() {
		why, err := r.unpublished(ctx, n)
		if err != nil {
			return nil, err
		}
		if why == "" {
			out = append(out, n)
		}
	}
	return out, nil
}

// readable tells the tables whose reads a run publishes: --operations has
// read, --table-pat matches, the table has a key or the format publishes
// tables without one, it is decoded (not partitioned: its partitions are;
// not unlogged), and with pgoutput its publication has it.
type readable struct {
	cfg                  Config
	keys                 *catalog.Cache
	flt                  *filter.Filter
	published, undecoded map[catalog.Name]bool // published: nil but with pgoutput
}

func newReadable(ctx context.Context, cfg Config, keys *catalog.Cache, flt *filter.Filter) (*readable, error) {
	r := &readable{cfg: cfg, keys: keys, flt: flt}
	var err error
	if cfg.Source.Plugin == decode.PGOutput {
		pub := cmp.Or(cfg.Source.Publication, "pg2kinesis")
		if r.published, err = tablesOf(ctx, cfg, publicationTablesQuery, pub); err != nil {
			return nil, fmt.Errorf("list the tables of publication %q: %w", pub, err)
		}
	}
	if r.undecoded, err = tablesOf(ctx, cfg, undecodedQuery); err != nil {
		return nil, fmt.Errorf("list the partitioned and unlogged tables: %w", err)
	}
	return r, nil
}

// unpublished says why the run does not publish the reads of n; "" if it
// does.
func (r *readable) unpublished(ctx context.Context, n catalog.Name) (string, error) {
	_, st, err := r.keys.Lookup(ctx, n)
	if err != nil {
		return "", err
	}
	t := decode.Table{Schema: n.Schema, Name: n.Table, Raw: n.Schema + "." + n.Table}
	switch {
	case n == r.cfg.Snapshot.Table:
		return "it is the snapshot state table", nil
	case !r.flt.Op(decode.Read):
		return "--operations leaves out read", nil
	case !r.flt.Table(t):
		return "--table-pat does not match it", nil
	case st == catalog.Unknown:
		return "no such table", nil
	case r.undecoded[n]:
		return "its changes are not decoded under its name (partitioned: snapshot its partitions; or unlogged)", nil
	case st == catalog.Keyless && !r.cfg.publishesKeyless():
		return "it has no primary key and the format publishes such tables only with --full-change or -f JSON", nil
	case r.published != nil && !r.published[n]:
		return "the publication does not have it", nil
	}
	return "", nil
}

const (
	publicationTablesQuery = "SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = $1"
	undecodedQuery         = `SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'p' OR c.relpersistence <> 'p'`
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
