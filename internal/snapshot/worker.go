package snapshot

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
)

// table snapshots one table on a connection of its own, from where its
// state says it stands, chunk after chunk: each chunk is announced, read
// between its own watermarks, and handed to the stream. The next chunk is
// read while the stream places the one before (a chunk's read needs only
// the cursor its predecessor's read ends at), so that reading and placing
// overlap, and a worker holds at most two chunks: the one it reads and
// the one the stream places.
func (r *Runner) table(ctx context.Context, p Progress) error {
	conn, err := r.cfg.Connect(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
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
	if _, err := conn.Exec(ctx, "SET row_security = off"); err != nil {
		return fmt.Errorf("snapshot of %s: %w", p.Table, err)
	}
	if _, err := conn.Exec(ctx, "SET synchronous_commit = on"); err != nil {
		return fmt.Errorf("snapshot of %s: %w", p.Table, err)
	}
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
	version, err := shapeVersion(ctx, conn, p.Table) // before the description: no newer
	if err != nil {
		return err
	}
	t, err := Describe(ctx, conn, p.Table, key, r.cfg.Plugin)
	if err != nil {
		return err
	}
	estimate, err := t.Estimate(ctx, conn)
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
	r.reading.Add(1)
	defer r.reading.Add(-1)
	w := &worker{r: r, conn: conn, t: t, version: version, key: key, m: r.cfg.Metrics.Table(p.Table.Schema, p.Table.Table),
		window: make(chan struct{}, maxUnrecorded)}
	defer w.forget() // a chunk left in the exchange on an error or a stop
	err = w.run(ctx, p.LastKey)
	if err != nil && ctx.Err() == nil {
		// Whatever the error says (a read's undefined table, a describe
		// that finds nothing), a table that is gone is done with.
		if there, xerr := Exists(ctx, conn, p.Table); xerr == nil && !there {
			r.log.Warn("table dropped while it was snapshotted: skipped", "table", p.Table, "err", err)
			return Skip(ctx, conn, r.cfg.StateTable, r.cfg.Slot, p.Table)
		}
	}
	return err
}

// worker is one table's snapshot under way.
type worker struct {
	r    *Runner
	conn *pgx.Conn
	t    *Table
	// version is the catalog's version of the table (shapeVersion) taken
	// just before t was described.
	version string
	key     []string
	m       *metrics.SnapshotTable
	// sent are the chunks handed to the stream and not yet placed, in
	// the order of their watermarks: two at most.
	sent []*inflight
	// window holds a place for each chunk placed and not yet recorded
	// (maxUnrecorded at most): the runner gives it back.
	window  chan struct{}
	rowSize int // what a row of the last chunk read holds (Rows.Size), on average
	rows    int // the rows of the last chunk read with any
}

// inflight is a chunk handed to the stream: its rows are the exchange's.
type inflight struct {
	h     *Handoff
	after []string // the cursor it was read after: where it is read again if spoiled
	next  []string // where the next chunk starts; nil when done
	done  bool     // the table's last chunk
	stale bool     // read with a description the table no longer has
}

// lastKey is where the table's state stands once the chunk is delivered.
func (c *inflight) lastKey() []string {
	if c.next != nil {
		return c.next
	}
	return c.after
}

// run reads the chunks after cursor until the last is placed. The state
// advances in order: a chunk is sent to the runner only once the chunks
// before it are, and a spoiled chunk is read again before any after it
// counts.
func (w *worker) run(ctx context.Context, cursor []string) error {
	for {
		if len(w.sent) == 0 || !w.sent[len(w.sent)-1].done {
			c, err := w.send(ctx, cursor)
			if err != nil {
				return err
			}
			w.sent = append(w.sent, c)
			cursor = c.next
			if len(w.sent) < 2 && !c.done {
				continue // read the next one while the stream places this one
			}
		}
		c := w.sent[0]
		if err := w.await(ctx, c); err != nil {
			return err
		}
		w.sent = w.sent[1:]
		w.r.placed(w.t.Name(), c.h)
		if c.h.Spoiled || c.stale {
			w.r.log.Debug("chunk spoiled (a change without its key in its window, or a transaction invisible to its read): reading it again",
				"table", w.t.Name(), "after", c.after)
			// The chunk after it starts where this one ended when it was
			// read; read again, it may end elsewhere: both are read again
			// from here. Forgotten, the next one is not published, unless
			// the stream has already taken it, which costs a duplicate.
			w.forget()
			cursor = c.after
			continue
		}
		select {
		case w.window <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		d := delivered{table: w.t.Name(), lastKey: c.lastKey(), rows: int64(c.h.Published), lsn: c.h.CommitLSN, done: c.done, window: w.window}
		select {
		case w.r.acks <- d:
		case <-ctx.Done():
			return ctx.Err()
		}
		if c.done {
			return nil
		}
	}
}

// send reads the chunk after cursor between its own watermarks and hands
// it to the stream.
func (w *worker) send(ctx context.Context, cursor []string) (*inflight, error) {
	x := w.r.x
	h := x.Expect(w.t.Name(), w.key)
	mark := Mark{Slot: w.r.cfg.Slot, Run: x.Run, Chunk: h.ID, Table: w.t.Name()}
	if err := emit(ctx, w.conn, mark); err != nil {
		x.Forget(h)
		return nil, err
	}
	start := time.Now()
	c, invisible, err := read(ctx, w.conn, w.t, cursor, w.limit())
	if err != nil {
		x.Forget(h)
		return nil, err
	}
	w.m.ReadSeconds.Add(time.Since(start).Seconds())
	w.m.RowsRead.Add(float64(c.Rows.Len()))
	if n := c.Rows.Len(); n > 0 {
		w.rowSize, w.rows = max(c.Rows.Size()/n, 1), n
	}
	x.Fill(h, c.Rows, invisible)
	mark.High = true
	if err := emit(ctx, w.conn, mark); err != nil {
		x.Forget(h)
		return nil, err
	}
	// Described again once the high watermark has committed, if DDL
	// changed the table since its description: a column added or dropped
	// since the description the chunk was read with (even between its
	// read and its high watermark) makes its rows older than the table's,
	// so it is read again, and the next ones are read with the new
	// description.
	version, err := shapeVersion(ctx, w.conn, w.t.Name())
	if err != nil {
		x.Forget(h)
		return nil, err
	}
	stale := false
	if version != w.version {
		t, err := Describe(ctx, w.conn, w.t.Name(), w.key, w.r.cfg.Plugin)
		if err != nil {
			x.Forget(h)
			return nil, err
		}
		stale = !t.sameShape(w.t)
		w.t, w.version = t, version
	}
	return &inflight{h: h, after: cursor, next: c.Next, done: c.Done, stale: stale}, nil
}

// Chunks are bounded by what their rows hold as well as by rows, so that a
// table of wide rows does not hold chunks of --snapshot-chunk-rows of
// them: the workers reading share chunkBytes a chunk, about, and a worker
// holds two chunks. A table's first chunk is of firstChunkRows at most,
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

// await waits until the stream has placed c.
func (w *worker) await(ctx context.Context, c *inflight) error {
	start := time.Now()
	defer func() { w.m.WaitSeconds.Add(time.Since(start).Seconds()) }()
	select {
	case <-c.h.Done():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// forget drops the chunks sent and not placed: their watermarks, if the
// stream reads them still, are ignored.
func (w *worker) forget() {
	for _, c := range w.sent {
		w.r.x.Forget(c.h)
	}
	w.sent = nil
}

// emit writes a watermark into the WAL, in a transaction of its own, so
// that the stream reads it where it commits, among the other commits.
func emit(ctx context.Context, conn *pgx.Conn, m Mark) error {
	if _, err := conn.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, $2)", Prefix, m.Content()); err != nil {
		return fmt.Errorf("write a snapshot watermark for %s: %w", m.Table, err)
	}
	return nil
}

// read reads the chunk after cursor in a short transaction of its own,
// whose snapshot also names the transactions it sees as running (see
// Exchange). txid_current_snapshot, not pg_current_snapshot: PostgreSQL 12
// has only the former.
func read(ctx context.Context, conn *pgx.Conn, t *Table, cursor []string, lim Limit) (Chunk, Invisible, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return Chunk{}, Invisible{}, fmt.Errorf("read a chunk of %s: %w", t.Name(), err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // after Commit: nothing
	var running []int64
	var xmax int64
	err = tx.QueryRow(ctx, `SELECT coalesce((SELECT array_agg(x) FROM txid_snapshot_xip(s) x), '{}'), txid_snapshot_xmax(s)
		FROM txid_current_snapshot() s`).Scan(&running, &xmax)
	if err != nil {
		return Chunk{}, Invisible{}, fmt.Errorf("read a chunk of %s: the snapshot: %w", t.Name(), err)
	}
	c, err := t.Read(ctx, conn, cursor, lim)
	if err != nil {
		return Chunk{}, Invisible{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Chunk{}, Invisible{}, fmt.Errorf("read a chunk of %s: %w", t.Name(), err)
	}
	// xids with their epoch above: the stream's xids are 32-bit.
	invisible := Invisible{Running: make([]uint32, len(running)), From: uint32(xmax)}
	for i, x := range running {
		invisible.Running[i] = uint32(x)
	}
	return c, invisible, nil
}
