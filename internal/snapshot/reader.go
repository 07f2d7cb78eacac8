package snapshot

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
)

// reader reads a table's chunks on a connection of its own, with the
// description of the table it last saw.
type reader struct {
	r    *Runner
	conn *pgx.Conn
	t    *Table
	// version is the catalog's version of the table (shapeVersion) taken
	// just before t was described.
	version string
	key     []string
	m       *metrics.SnapshotTable
	// free are the rows of chunks the stream is done with (the worker's).
	free chan *Rows
}

// job is a span to read within lim, or to sample: to cut into spans of
// about lim.Rows rows, of rowSize each.
type job struct {
	s       *span
	lim     Limit
	sample  bool
	rowSize int
}

// result is a job done: the chunk read, or the bounds found; or, gone, a
// reader that could not start.
type result struct {
	job
	c      *inflight
	bounds [][]string
	err    error
	ready  bool // an extra reader started: it takes jobs from now on
	gone   bool // an extra reader could not start
}

// prepare sets a reader's connection up and describes the table.
func (rd *reader) prepare(ctx context.Context, name catalog.Name) error {
	// The stream reads a watermark once its WAL is flushed: with
	// synchronous_commit off (a server or role setting some use for
	// speed), that is up to wal_writer_delay later, 200 ms by default,
	// which each chunk would wait twice. on, not local: a low watermark
	// that waits for the synchronous standbys, as the transactions
	// committed before it do, returns only once those are released too,
	// so that few of them are still invisible to the chunk's read (each
	// such one spoils the chunk, see Exchange).
	// Row-level security would silently hide rows from the snapshot: off,
	// as pg_dump sets it, a policy that applies makes the read fail.
	if err := rd.conn.PgConn().Exec(ctx, "SET row_security = off; SET synchronous_commit = on").Close(); err != nil {
		return fmt.Errorf("snapshot of %s: %w", name, err)
	}
	version, err := shapeVersion(ctx, rd.conn, name) // before the description: no newer
	if err != nil {
		return err
	}
	t, err := Describe(ctx, rd.conn, name, rd.key, rd.r.cfg.Plugin)
	if err != nil {
		return err
	}
	rd.t, rd.version = t, version
	return nil
}

// serve does the jobs it is given until jobs is closed.
func (rd *reader) serve(ctx context.Context, jobs <-chan job, results chan<- result) {
	for j := range jobs {
		res := result{job: j}
		if j.sample {
			res.bounds, res.err = rd.sample(ctx, j)
		} else {
			res.c, res.err = rd.send(ctx, j.s.after, j.s.upto, j.lim)
		}
		results <- res
	}
}

// send reads the span (after, upto]'s chunk between its own watermarks
// and hands it to the stream.
func (rd *reader) send(ctx context.Context, after, upto []string, lim Limit) (*inflight, error) {
	x := rd.r.x
	name := rd.t.Name()
	h := x.Expect(name, rd.key)
	mark := Mark{Slot: rd.r.cfg.Slot, Run: x.Run, Chunk: h.ID, Table: name}
	select {
	case lim.recycled = <-rd.free:
	default:
	}
	start := time.Now()
	c, invisible, err := read(ctx, rd.conn, rd.t, mark, after, upto, lim)
	if err != nil {
		x.Forget(h)
		return nil, err
	}
	rd.m.ReadSeconds.Add(time.Since(start).Seconds())
	rd.m.RowsRead.Add(float64(c.Rows.Len()))
	x.Fill(h, c.Rows, invisible)
	mark.High = true
	version, err := seal(ctx, rd.conn, mark)
	if err != nil {
		x.Forget(h)
		return nil, err
	}
	// Described again, if DDL changed the table since its description: a
	// column added or dropped since the description the chunk was read
	// with (even between its read and its high watermark) makes its rows
	// older than the table's, so it is read again, and the next ones are
	// read with the new description.
	stale := false
	if version != rd.version {
		t, err := Describe(ctx, rd.conn, name, rd.key, rd.r.cfg.Plugin)
		if err != nil {
			x.Forget(h)
			return nil, err
		}
		stale = !t.sameShape(rd.t)
		rd.t, rd.version = t, version
	}
	return &inflight{h: h, next: c.Next, done: c.Done, stale: stale, rows: c.Rows, n: c.Rows.Len(), size: c.Rows.Size()}, nil
}

// maxSamplePages bounds a sample's reads (64 MiB of 8 kB pages).
const maxSamplePages = 8192

// sample cuts the span j.s, the rest of a keyed table, into spans of about
// j.lim.Rows rows: it reads the keys of a sample of the table's pages
// (TABLESAMPLE SYSTEM: whole pages, about 8 a span, so that the bounds
// are even within a few pages' rows) and returns every few of them, in
// key order. A span holds 8 pages of the sample at least: bounds closer
// than that would fall within a page or two and leave the keys between
// the pages sampled to one span.
func (rd *reader) sample(ctx context.Context, j job) ([][]string, error) {
	t := rd.t
	var pages int64
	if err := rd.conn.QueryRow(ctx, "SELECT pg_relation_size($1::regclass) / current_setting('block_size')::int",
		t.quoted).Scan(&pages); err != nil {
		return nil, fmt.Errorf("sample the keys of %s: %w", t.name, err)
	}
	if pages == 0 {
		return nil, nil
	}
	perPage := min(t.rowsPerPage, 8192/float64(max(j.rowSize, 1))) // the text is about what the page holds
	perPage = max(perPage, 1)
	spanPages := max(float64(j.lim.Rows)/perPage, 1)
	pct := min(100, 100*8/spanPages, 100*maxSamplePages/float64(pages))
	// A span's rows sampled: as many as its pages sampled hold.
	step := int64(math.Round(max(float64(j.lim.Rows)*pct/100, 8*perPage)))
	keys := t.keyList()
	// The outer query names the sample's columns by position (s(k1, ...,
	// n)): a name of its own for the row number could be a key column's.
	outer := make([]string, len(t.key))
	for i := range outer {
		outer[i] = "k" + strconv.Itoa(i+1)
	}
	outerKeys := strings.Join(outer, ", ")
	var st statement
	st.sql = "SELECT " + outerKeys + " FROM (SELECT " + keys + ", row_number() OVER (ORDER BY " + keys + ")" +
		" FROM ONLY " + t.quoted + " TABLESAMPLE SYSTEM (" + strconv.FormatFloat(pct, 'f', 6, 64) + ")"
	if j.s.after != nil {
		st.sql += " WHERE " + t.keyBound(&st, ">", j.s.after)
	}
	st.sql += ") s(" + outerKeys + ", n) WHERE n % " + strconv.FormatInt(step, 10) + " = 0 ORDER BY " + outerKeys
	var bounds [][]string
	rr := rd.conn.PgConn().ExecParams(ctx, st.sql, st.args, st.oids, nil, nil)
	for rr.NextRow() {
		b := make([]string, len(rr.Values()))
		for i, v := range rr.Values() {
			b[i] = string(v)
		}
		bounds = append(bounds, b)
	}
	if _, err := rr.Close(); err != nil {
		return nil, fmt.Errorf("sample the keys of %s: %w", t.name, err)
	}
	return bounds, nil
}

// start starts the first reader.
func (w *worker) start(ctx context.Context, readers *errgroup.Group, first *reader, jobs <-chan job, results chan<- result) {
	w.r.reading.Add(1)
	readers.Go(func() error {
		defer w.r.reading.Add(-1)
		first.serve(ctx, jobs, results)
		return nil
	})
}

// add starts a reader on a connection of its own. It says on results
// when it is ready to take jobs, or that it cannot start (the server's
// connections all taken, say), and leaves its jobs to the others.
func (w *worker) add(ctx context.Context, readers *errgroup.Group, jobs <-chan job, results chan<- result) {
	readers.Go(func() error {
		failed := func(msg string, err error) error {
			if ctx.Err() == nil {
				w.r.log.Warn(msg, "table", w.name, "err", err)
			}
			results <- result{gone: true}
			return nil
		}
		conn, err := w.r.cfg.Connect(ctx)
		if err != nil {
			return failed("snapshot: cannot open a connection for another reader of the table; its readers go on without", err)
		}
		rd := &reader{r: w.r, conn: conn, key: w.key, m: w.m, free: w.free}
		if err := rd.prepare(ctx, w.name); err != nil {
			// Closed before the worker is given back: the runner may
			// open another table's connection at once.
			_ = conn.Close(context.WithoutCancel(ctx))
			return failed("snapshot: another reader of the table cannot start; its readers go on without", err)
		}
		defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
		w.r.reading.Add(1)
		defer w.r.reading.Add(-1)
		results <- result{ready: true}
		rd.serve(ctx, jobs, results)
		return nil
	})
}
