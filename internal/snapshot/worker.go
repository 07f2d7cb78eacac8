package snapshot

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
)

// table snapshots one table, from where its state says it stands, chunk
// after chunk, on a connection of its own and, given extra readers, on as
// many more: each chunk is announced, read between its own watermarks,
// and handed to the stream. A reader reads its next chunk while the
// stream places the one before, so that reading and placing overlap: the
// table holds at most two chunks a reader.
func (r *Runner) table(ctx context.Context, p Progress, extra int) error {
	conn, err := r.cfg.Connect(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if r.cfg.Unpublished != nil {
		why, err := r.cfg.Unpublished(ctx, p.Table)
		if err != nil {
			return err
		}
		if why != "" {
			r.log.Warn("table asked to be snapshotted is skipped: this run does not publish its reads", "table", p.Table, "why", why)
			return Skip(ctx, conn, r.cfg.StateTable, r.cfg.Slot, p.Table)
		}
	}
	key, ok, err := r.cfg.KeyOf(ctx, p.Table)
	if err != nil {
		return err
	}
	if !ok {
		r.log.Warn("table to snapshot does not exist (any more): skipped", "table", p.Table)
		return Skip(ctx, conn, r.cfg.StateTable, r.cfg.Slot, p.Table)
	}
	m := r.cfg.Metrics.Table(p.Table.Schema, p.Table.Table)
	first := &reader{r: r, conn: conn, key: key, m: m}
	if err := first.prepare(ctx, p.Table); err != nil {
		return err
	}
	estimate, err := first.t.Estimate(ctx, conn)
	if err != nil {
		// Only the progress needs it: go on without.
		r.log.Warn("cannot estimate the rows of the table to snapshot", "table", p.Table, "err", err)
		estimate = -1
	}
	if p.State == Pending {
		if err := Start(ctx, conn, r.cfg.StateTable, r.cfg.Slot, p.Table); err != nil {
			return err
		}
		r.log.Info("snapshot of table started", "table", p.Table, "key", key)
	} else {
		r.log.Info("snapshot of table resumed", "table", p.Table, "after", p.LastKey)
	}
	r.begin(p, estimate)
	if first.t.Keyless() {
		// Its ranges of blocks are read one after the other.
		r.booked.release(p.Table, extra)
		extra = 0
	}
	w := &worker{r: r, name: p.Table, key: key, m: m, extra: extra, estimate: estimate,
		window: make(chan struct{}, maxUnrecorded), free: make(chan *Rows, 1)}
	first.free = w.free
	err = w.run(ctx, first, p.LastKey)
	if err != nil && ctx.Err() == nil {
		return r.gone(ctx, conn, p.Table, err)
	}
	return err
}

// worker is one table's snapshot under way: it hands the spans of its
// plan to its readers and delivers their chunks, once placed, in key
// order. The plan and the chunks sent are its alone.
type worker struct {
	r        *Runner
	name     catalog.Name
	key      []string
	m        *metrics.SnapshotTable
	extra    int   // readers it may add to the first, once the table is cut into spans
	estimate int64 // the table's rows, -1 if unknown
	sampled  bool
	// sent are the spans whose chunks are handed to the stream and not
	// yet placed, in the order they were handed over.
	sent []*span
	// window holds a place for each chunk placed and not yet recorded
	// (maxUnrecorded at most): the runner gives it back.
	window chan struct{}
	// free holds the rows of a chunk placed, for a reader to read the
	// next into: one, beside the two a reader holds.
	free    chan *Rows
	rowSize int   // what a row of the last chunk read holds (Rows.Size), on average
	rows    int   // the most rows a chunk read held
	read    int64 // rows read
}

// inflight is a chunk handed to the stream: its rows are the exchange's.
type inflight struct {
	h     *Handoff
	next  []string // where its read ended (Chunk.Next): its last row's key, or the cursor it was read after
	done  bool     // read its span to the end
	stale bool     // read with a description the table no longer has
	rows  *Rows    // the exchange's until the chunk is placed
	n     int      // rows read
	size  int      // what they hold (Rows.Size)
}

// run reads the table's plan from cursor on, with the first reader and
// the extra ones it adds, until every span is delivered. The state
// advances in key order: a span's chunk is sent to the runner once the
// spans before it are, and a spoiled chunk's span is read again before
// any after it counts.
func (w *worker) run(ctx context.Context, first *reader, cursor []string) error {
	ctx, cancel := context.WithCancel(ctx)
	jobs := make(chan job, 1+w.extra)
	results := make(chan result, 1+w.extra)
	var readers errgroup.Group
	defer func() {
		close(jobs)
		cancel()
		_ = readers.Wait()
		// Chunks left in the exchange on an error or a stop: those sent,
		// and those read since.
		for _, s := range w.sent {
			w.r.x.Forget(s.c.h)
		}
		for len(results) > 0 {
			switch res := <-results; {
			case res.c != nil:
				w.r.x.Forget(res.c.h)
			case res.gone: // refused after the table was read: still not used
				w.giveBack(1)
			}
		}
	}()
	w.start(ctx, &readers, first, jobs, results)
	p := newPlan(cursor)
	// Readers that read, readers added and not yet started (counted in
	// n only once ready: one that never starts must not have let the
	// others hold its two chunks), and readers with a job.
	n, starting, busy := 1, 0, 0
	for !p.done() {
		for busy < n && len(w.sent)+busy < 2*n {
			s := p.next()
			if s == nil {
				break
			}
			s.state = reading
			jobs <- w.job(s)
			busy++
		}
		var placedc <-chan struct{}
		if len(w.sent) > 0 {
			placedc = w.sent[0].c.h.Done()
		}
		// No reader reads while chunks wait for the stream: the table
		// waits for the stream.
		waiting, since := busy == 0 && len(w.sent) > 0, time.Now()
		select {
		case res := <-results:
			switch {
			case res.ready:
				starting, n = starting-1, n+1
				continue
			case res.gone: // a reader that could not start: no job of its own
				starting--
				w.giveBack(1)
				continue
			}
			busy--
			switch {
			case res.sample:
				w.sampled = true
				res.s.state = todo
				if res.err != nil {
					if ctx.Err() == nil { // a sample cut short by shutdown is no news
						w.r.log.Warn("snapshot: cannot sample the table's keys; one reader reads it", "table", w.name, "err", res.err)
					}
					w.giveBack(w.extra)
					continue
				}
				p.split(res.s, res.bounds)
				for ; n+starting < 1+w.extra && p.todoSpans() > n+starting; starting++ {
					w.add(ctx, &readers, jobs, results)
				}
				w.giveBack(1 + w.extra - n - starting) // too few spans to share
			case res.err != nil:
				return res.err
			default:
				w.counted(res.c)
				p.sent(res.s, res.c)
				w.sent = append(w.sent, res.s)
			}
		case <-placedc:
			if waiting {
				w.m.WaitSeconds.Add(time.Since(since).Seconds())
			}
			s := w.sent[0]
			w.sent = w.sent[1:]
			if err := w.placed(ctx, p, s); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// job is the next job for span s: the rest of a keyed table, once the
// first chunk has sized its rows, is sampled into spans for the extra
// readers to share, if it holds two at least.
func (w *worker) job(s *span) job {
	if w.extra > 0 && !w.sampled && s.upto == nil && w.rowSize > 0 {
		// A span's share of chunkBytes once the extra readers read too,
		// with room: a span is read in one chunk unless it grew.
		bytes := chunkBytes / max(int(w.r.reading.Load())+w.extra, 1) * 3 / 4
		rows := max(min(w.r.cfg.ChunkRows, bytes/w.rowSize), 1)
		if w.estimate < 0 || w.estimate-w.read >= int64(2*rows) {
			return job{s: s, sample: true, rowSize: w.rowSize, lim: Limit{Rows: rows, Bytes: bytes}}
		}
		w.giveBack(w.extra) // what is left, by the estimate, shrinks: one reader
	}
	return job{s: s, lim: w.limit()}
}

// giveBack returns n of the extra readers the table was given, which it
// will not use, to the runner, for another table.
func (w *worker) giveBack(n int) {
	if n > 0 {
		w.r.booked.release(w.name, n)
		w.extra -= n
	}
}

// counted learns the rows' size from a chunk read.
func (w *worker) counted(c *inflight) {
	w.read += int64(c.n)
	if c.n > 0 {
		// The most rows a chunk held: the rest of a span cut short, or
		// a small span, does not shrink the chunks after it.
		w.rowSize, w.rows = max(c.size/c.n, 1), max(w.rows, c.n)
	}
}

// placed handles a chunk the stream has placed, and sends the runner the
// spans now delivered in key order.
func (w *worker) placed(ctx context.Context, p *plan, s *span) error {
	w.r.placed(w.name, s.c.h)
	// Placed, the chunk is committed: the stream is done with its rows.
	select {
	case w.free <- s.c.rows:
	default:
	}
	s.c.rows = nil
	spoiled := s.c.h.Spoiled || s.c.stale
	if spoiled {
		w.r.log.Debug("chunk spoiled (a change without its key in its window, or a transaction invisible to its read): reading it again",
			"table", w.name, "after", s.after)
	}
	for _, d := range p.placed(s, spoiled) {
		select {
		case w.window <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		lastKey, end := d.lastKey()
		dv := delivered{table: w.name, lastKey: lastKey, rows: int64(d.c.h.Published), lsn: d.c.h.CommitLSN, done: end, window: w.window}
		select {
		case w.r.acks <- dv:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Chunks are bounded by what their rows hold as well as by rows, so that a
// table of wide rows does not hold chunks of --snapshot-chunk-rows of
// them: the readers share chunkBytes a chunk, about, and a reader holds
// two chunks. A table's first chunk is of firstChunkRows at most,
// and the next are sized by the rows before them, growing by growth at
// most: a chunk cut short by the bound has still read (and the server
// has still fetched) every row of its LIMIT, so a table whose rows widen
// must not find the bound with a LIMIT sized for narrow ones.
const (
	chunkBytes     = 6 << 20
	firstChunkRows = 100
	growth         = 4
)

// limit bounds the next chunk.
func (w *worker) limit() Limit {
	bytes := chunkBytes / max(int(w.r.reading.Load()), 1)
	if w.rowSize == 0 {
		return Limit{Rows: min(w.r.cfg.ChunkRows, firstChunkRows), Bytes: bytes}
	}
	n := max(min(w.r.cfg.ChunkRows, bytes/w.rowSize, growth*w.rows), 1)
	// The buffer sized with room to spare: it then grows (and copies
	// itself) rarely.
	return Limit{Rows: n, Bytes: bytes, Size: min(n*w.rowSize+n*w.rowSize/8, bytes+bytes/8)}
}

// emitSQL writes a watermark into the WAL, in a transaction of its own, so
// that the stream reads it where it commits, among the other commits.
const emitSQL = "SELECT pg_logical_emit_message(true, $1, $2)"

func emitStatement(m Mark) statement {
	return statement{sql: emitSQL, args: [][]byte{[]byte(Prefix), []byte(m.Content())}}
}

// read writes the chunk's low watermark, then reads the chunk of the span
// (cursor, upto] in a short transaction of its own, whose snapshot also names the
// transactions it sees as running (see Exchange): one round trip.
// txid_current_snapshot, not pg_current_snapshot: PostgreSQL 12 has only
// the former.
func read(ctx context.Context, conn *pgx.Conn, t *Table, low Mark, cursor, upto []string, lim Limit) (Chunk, Invisible, error) {
	pl, err := t.plan(cursor, upto, lim)
	if err != nil {
		return Chunk{}, Invisible{}, t.readErr(cursor, err)
	}
	pl.rows = pl.collect
	var snapshot string
	errs := roundTrip(ctx, conn.PgConn(),
		[]statement{emitStatement(low)},
		[]statement{
			{sql: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"},
			{sql: "SELECT txid_current_snapshot()::text", rows: scanText(&snapshot)},
			pl.statement,
			{sql: "COMMIT"},
		})
	if errs[0] != nil {
		return Chunk{}, Invisible{}, fmt.Errorf("write a snapshot watermark for %s: %w", low.Table, errs[0])
	}
	if errs[1] != nil {
		return Chunk{}, Invisible{}, t.readErr(cursor, errs[1])
	}
	c, err := pl.chunk()
	if err != nil {
		return Chunk{}, Invisible{}, t.readErr(cursor, err)
	}
	invisible, err := parseSnapshot(snapshot)
	if err != nil {
		return Chunk{}, Invisible{}, t.readErr(cursor, err)
	}
	return c, invisible, nil
}

// seal writes a chunk's high watermark, then reads its table's catalog
// version (shapeVersion): one round trip. The version is read once the
// watermark has committed, so that DDL before the watermark shows in it.
func seal(ctx context.Context, conn *pgx.Conn, high Mark) (version string, _ error) {
	errs := roundTrip(ctx, conn.PgConn(),
		[]statement{emitStatement(high)},
		[]statement{{sql: versionQuery, args: [][]byte{[]byte(quoteName(high.Table))}, rows: scanText(&version)}})
	if errs[0] != nil {
		return "", fmt.Errorf("write a snapshot watermark for %s: %w", high.Table, errs[0])
	}
	if errs[1] != nil {
		return "", fmt.Errorf("the catalog version of %s: %w", high.Table, errs[1])
	}
	return version, nil
}
