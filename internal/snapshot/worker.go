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
// between its watermarks, and waited for until the stream has placed it,
// so that a worker holds one chunk at a time.
func (r *Runner) table(ctx context.Context, p Progress) error {
	conn, err := r.cfg.Connect(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	// The stream reads a watermark once its WAL is flushed: with
	// synchronous_commit off (a server or role setting some use for
	// speed), that is up to wal_writer_delay later, 200 ms by default,
	// which each chunk would wait twice. local flushes at commit without
	// waiting for synchronous standbys.
	if _, err := conn.Exec(ctx, "SET synchronous_commit = local"); err != nil {
		return fmt.Errorf("snapshot of %s: %w", p.Table, err)
	}
	key, ok, err := r.cfg.KeyOf(ctx, p.Table)
	if err != nil {
		return err
	}
	if !ok {
		r.log.Warn("table to snapshot does not exist (any more): skipped", "table", p.Table)
		return Advance(ctx, conn, r.cfg.StateTable, r.cfg.Slot, p.Table, p.LastKey, 0, 0, true)
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
	m := r.cfg.Metrics.Table(p.Table.Schema, p.Table.Table)
	cursor := p.LastKey
	for {
		c, h, err := r.chunk(ctx, conn, t, key, cursor, m)
		if err != nil {
			return err
		}
		r.placed(p.Table, h)
		if h.Spoiled {
			r.log.Debug("a change without its key in a chunk's window: reading the chunk again", "table", p.Table)
			continue
		}
		last := cursor
		if c.Next != nil {
			last = c.Next
		}
		select {
		case r.acks <- delivered{table: p.Table, lastKey: last, rows: int64(h.Published), lsn: h.CommitLSN, done: c.Done}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if c.Done {
			return nil
		}
		cursor = c.Next
	}
}

// chunk reads the chunk after cursor between its watermarks and waits
// until the stream has placed it; m counts the rows read and the time
// spent reading and waiting.
func (r *Runner) chunk(ctx context.Context, conn *pgx.Conn, t *Table, key []string, cursor []string,
	m *metrics.SnapshotTable) (Chunk, *Handoff, error) {
	h := r.x.Expect(t.Name(), key)
	mark := Mark{Slot: r.cfg.Slot, Run: r.x.Run, Chunk: h.ID, Table: t.Name()}
	if err := emit(ctx, conn, mark); err != nil {
		r.x.Forget(h)
		return Chunk{}, nil, err
	}
	start := time.Now()
	c, invisible, err := read(ctx, conn, t, cursor, r.cfg.ChunkRows)
	if err != nil {
		r.x.Forget(h)
		return Chunk{}, nil, err
	}
	m.ReadSeconds.Add(time.Since(start).Seconds())
	m.RowsRead.Add(float64(len(c.Rows)))
	r.x.Fill(h, c.Rows, invisible)
	mark.High = true
	if err := emit(ctx, conn, mark); err != nil {
		r.x.Forget(h)
		return Chunk{}, nil, err
	}
	start = time.Now()
	defer func() { m.WaitSeconds.Add(time.Since(start).Seconds()) }()
	select {
	case <-h.Done():
		return c, h, nil
	case <-ctx.Done():
		r.x.Forget(h)
		return Chunk{}, nil, ctx.Err()
	}
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
func read(ctx context.Context, conn *pgx.Conn, t *Table, cursor []string, n int) (Chunk, []uint32, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return Chunk{}, nil, fmt.Errorf("read a chunk of %s: %w", t.Name(), err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // after Commit: nothing
	var running []int64
	err = tx.QueryRow(ctx, "SELECT coalesce(array_agg(x), '{}') FROM txid_snapshot_xip(txid_current_snapshot()) x").Scan(&running)
	if err != nil {
		return Chunk{}, nil, fmt.Errorf("read a chunk of %s: the snapshot: %w", t.Name(), err)
	}
	c, err := t.Read(ctx, conn, cursor, n)
	if err != nil {
		return Chunk{}, nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Chunk{}, nil, fmt.Errorf("read a chunk of %s: %w", t.Name(), err)
	}
	invisible := make([]uint32, len(running))
	for i, x := range running {
		invisible[i] = uint32(x) // an xid with its epoch above: the stream's xids are 32-bit
	}
	return c, invisible, nil
}
