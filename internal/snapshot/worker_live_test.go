package snapshot

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sync/errgroup"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// fakeStream plays the stream's part for a worker: it reads the slot's
// test_decoding output by SQL and opens, takes and commits the chunks of
// the watermarks it finds. beforeCommit is called before a chunk's
// commit is passed to the exchange.
type fakeStream struct {
	x            *Exchange
	conn         *pgx.Conn
	slot         string
	beforeCommit func(c *Handoff) error
	afterOpen    func(m Mark)
	// delivered plays the runner's part for each chunk the worker
	// sends: by default it records it at once (gives its place back).
	delivered func(d delivered)
	metrics   *metrics.Snapshot

	taken     []*Handoff // since the last commit
	published int        // rows, of every chunk taken
	runner    *Runner
	readers   int32 // the most readers seen reading at a low watermark
}

const messagePrefix = "message: transactional: 1 prefix: " + Prefix + ", sz: "

func (s *fakeStream) run(ctx context.Context) error {
	for ctx.Err() == nil {
		rows, err := s.conn.Query(ctx, "SELECT lsn::text, xid::text::bigint, data FROM pg_logical_slot_get_changes($1, NULL, NULL)", s.slot)
		if err != nil {
			if ctx.Err() != nil {
				return nil // stopped
			}
			return err
		}
		var lsn, data string
		var xid int64
		n := 0
		_, err = pgx.ForEachRow(rows, []any{&lsn, &xid, &data}, func() error {
			n++
			return s.handle(lsn, uint32(xid), data)
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if n == 0 {
			time.Sleep(5 * time.Millisecond) // nothing new in the WAL yet
		}
	}
	return nil
}

func (s *fakeStream) handle(lsnText string, xid uint32, data string) error {
	switch {
	case strings.HasPrefix(data, messagePrefix):
		content := data[strings.Index(data, "content:")+len("content:"):]
		m, err := ParseMark([]byte(content))
		if err != nil {
			return err
		}
		if !m.High {
			s.readers = max(s.readers, s.runner.reading.Load())
			s.x.Open(m)
			if s.afterOpen != nil {
				s.afterOpen(m)
			}
			return nil
		}
		if c := s.x.Take(m); c != nil {
			if err := c.Each(func(row *decode.Event, _ []string) string { return string(row.New[0].Value) },
				func(*decode.Event) error { c.Published++; s.published++; return nil }); err != nil {
				return err
			}
			s.taken = append(s.taken, c)
		}
	case strings.HasPrefix(data, "COMMIT"):
		lsn, err := pglogrepl.ParseLSN(lsnText)
		if err != nil {
			return err
		}
		for _, c := range s.taken {
			if s.beforeCommit != nil {
				if err := s.beforeCommit(c); err != nil {
					return err
				}
			}
		}
		s.taken = s.taken[:0]
		s.x.Commit(xid, lsn)
	}
	return nil
}

// chunksHeld counts the chunks the exchange holds (expected, not yet
// committed or forgotten).
func chunksHeld(x *Exchange) (n int, filled []uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, c := range x.chunks {
		if c.filled {
			filled = append(filled, id)
		}
	}
	slices.Sort(filled)
	return len(x.chunks), filled
}

// itemsTable is the table workerRun snapshots.
var itemsTable = catalog.Name{Schema: "public", Table: "items"}

// workerRun runs one table's worker against a fake stream and returns
// the chunks it delivered, in order.
func workerRun(t *testing.T, rows, chunkRows int, setUp func(s *fakeStream)) ([]delivered, *metrics.Snapshot) {
	t.Helper()
	return workerRunWith(t, rows, chunkRows, 0, setUp)
}

// workerRunWith is workerRun with extra readers.
func workerRunWith(t *testing.T, rows, chunkRows, extra int, setUp func(s *fakeStream)) ([]delivered, *metrics.Snapshot) {
	t.Helper()
	conn, connect := liveDB(t, "CREATE TABLE items (id int PRIMARY KEY, v text)",
		fmt.Sprintf("INSERT INTO items SELECT i, 'row ' || i FROM generate_series(1, %d) i", rows))
	slot := testenv.Name(t)
	exec(t, conn, "SELECT 'x' FROM pg_create_logical_replication_slot('"+slot+"', 'test_decoding')")
	x := NewExchange(slot, NewRun())
	m := metrics.NewSnapshot()
	r := New(Config{Slot: slot, Plugin: decode.TestDecoding, ChunkRows: chunkRows, Connect: connect, Metrics: m,
		KeyOf: func(context.Context, catalog.Name) ([]string, bool, error) { return []string{"id"}, true, nil }}, x)
	streamConn, err := connect(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = streamConn.Close(context.Background()) }()
	s := &fakeStream{x: x, conn: streamConn, slot: slot, metrics: m, runner: r, delivered: func(d delivered) { <-d.window }}
	r.booked.book(itemsTable, 1+extra) // as the runner's schedule does
	setUp(s)

	table := itemsTable
	g, gctx := errgroup.WithContext(ctx(t))
	streamCtx, stopStream := context.WithCancel(gctx)
	defer stopStream()
	g.Go(func() error { return s.run(streamCtx) })
	tableDone := make(chan struct{})
	g.Go(func() error {
		defer stopStream()
		defer close(tableDone)
		return r.table(gctx, Progress{Table: table, State: Running}, extra)
	})
	var got []delivered
	g.Go(func() error {
		for {
			select {
			case d := <-r.acks:
				got = append(got, d)
				s.delivered(d)
			case <-tableDone:
				for { // what the worker sent before it ended
					select {
					case d := <-r.acks:
						got = append(got, d)
						s.delivered(d)
					default:
						return nil
					}
				}
			}
		}
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return got, m
}

// checkEachRowOnce checks that the chunks delivered and the rows the
// stream published are the table's rows, each once, the last chunk done
// (whatever the chunks' bounds: spans, or a keyless table's blocks).
func checkEachRowOnce(t *testing.T, got []delivered, stream *fakeStream, rows int) {
	t.Helper()
	var delivered int64
	for _, d := range got {
		delivered += d.rows
	}
	if delivered != int64(rows) || stream.published != rows || len(got) == 0 || !got[len(got)-1].done {
		t.Errorf("%d rows delivered in %d chunks, %d published, want %d: each once, the last chunk done", delivered, len(got), stream.published, rows)
	}
}

// checkCovers checks that the delivered chunks advance in key order over
// the table's rows, each once, the last done. (Their LSNs need not: a
// chunk read again comes later in the WAL than the one after it.)
func checkCovers(t *testing.T, got []delivered, rows, chunkRows int) {
	t.Helper()
	var published int64
	for i, d := range got {
		published += d.rows
		want := strconv.Itoa(min((i+1)*chunkRows, rows))
		if len(d.lastKey) != 1 || d.lastKey[0] != want {
			t.Errorf("chunk %d delivered up to %v, want %s", i+1, d.lastKey, want)
		}
		if last := i == len(got)-1; d.done != last {
			t.Errorf("chunk %d: done %t", i+1, d.done)
		}
	}
	if published != int64(rows) {
		t.Errorf("%d rows delivered, want %d", published, rows)
	}
}

// A worker reads its next chunk while the stream places the one before,
// holds no third, and delivers the chunks in order.
func TestLiveWorkerReadsAheadOneChunk(t *testing.T) {
	t.Parallel()
	const rows, chunkRows = 1000, 100
	checked := false
	got, _ := workerRun(t, rows, chunkRows, func(s *fakeStream) {
		s.beforeCommit = func(c *Handoff) error {
			if c.ID != 1 {
				return nil
			}
			// Chunk 1 is not placed before chunk 2 is read: the worker
			// reads it now, and, chunk 1 unplaced, announces no third.
			deadline := time.Now().Add(time.Minute)
			for {
				n, filled := chunksHeld(s.x)
				if slices.Contains(filled, 2) {
					if n != 2 {
						return fmt.Errorf("the exchange holds %d chunks of one worker (filled: %v), want 2 at most", n, filled)
					}
					checked = true
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("chunk 2 not read within a minute while chunk 1 waits to be placed")
				}
				time.Sleep(time.Millisecond)
			}
		}
	})
	if !checked {
		t.Error("the stream never placed chunk 1")
	}
	// 10 chunks of rows, and the empty one that finds the end.
	if len(got) != rows/chunkRows+1 {
		t.Errorf("%d chunks delivered, want %d", len(got), rows/chunkRows+1)
	}
	checkCovers(t, got, rows, chunkRows)
}

// A spoiled chunk is read again, and the one read after it meanwhile is
// kept, not read again: the state still advances in key order, over every
// row once, and no row is published twice.
func TestLiveWorkerReadsAgainAfterASpoiledChunk(t *testing.T) {
	t.Parallel()
	const rows, chunkRows = 450, 100
	var stream *fakeStream
	got, m := workerRun(t, rows, chunkRows, func(s *fakeStream) {
		stream = s
		s.afterOpen = func(mk Mark) {
			if mk.Chunk == 1 || mk.Chunk == 4 {
				// A truncate in the window: no key to match by.
				s.x.Touch(mk.Table, func([]string) ([]string, bool) { return nil, false })
			}
		}
	})
	checkCovers(t, got, rows, chunkRows)
	if len(got) != 5 {
		t.Errorf("%d chunks delivered, want 5", len(got))
	}
	if v := testutil.ToFloat64(m.Table("public", "items").Spoiled); v != 2 {
		t.Errorf("%v chunks counted spoiled, want 2", v)
	}
	if stream.published != rows {
		t.Errorf("the stream published %d rows, want %d: each once", stream.published, rows)
	}
}

// A worker whose chunks are not recorded (Kinesis has not acknowledged
// them) stops reading once maxUnrecorded of them wait: what a crash
// re-sends stays bounded, whatever the table's size. Recorded, it goes on.
func TestLiveWorkerWaitsForItsChunksToBeRecorded(t *testing.T) {
	t.Parallel()
	const chunkRows = 10
	const rows = (maxUnrecorded + 10) * chunkRows
	checked := false
	got, _ := workerRun(t, rows, chunkRows, func(s *fakeStream) {
		var held []delivered
		s.delivered = func(d delivered) {
			if held = append(held, d); len(held) < maxUnrecorded {
				return
			}
			// Give the worker time to read further if it would: it
			// must not (a check that something does not happen).
			time.Sleep(500 * time.Millisecond)
			read := testutil.ToFloat64(s.metrics.Table("public", "items").RowsRead)
			if limit := float64((maxUnrecorded + 2) * chunkRows); read > limit {
				t.Errorf("%v rows read with %d chunks unrecorded, more than the %v that they and the two read ahead hold",
					read, len(held), limit)
			}
			checked = true
			for _, h := range held {
				<-h.window
			}
			s.delivered = func(d delivered) { <-d.window }
		}
	})
	if !checked {
		t.Errorf("%d chunks delivered: never %d unrecorded", len(got), maxUnrecorded)
	}
	checkCovers(t, got, rows, chunkRows)
}

// With an extra reader, the table is sampled into spans after its first
// chunk, both readers read them, and the chunks are still delivered in
// key order, over every row once.
func TestLiveWorkerReadsSpansInParallel(t *testing.T) {
	t.Parallel()
	const rows, chunkRows = 20000, 500
	var stream *fakeStream
	got, _ := workerRunWith(t, rows, chunkRows, 1, func(s *fakeStream) { stream = s })
	if stream.readers < 2 {
		t.Errorf("at most %d reader read at once, want 2", stream.readers)
	}
	if n := stream.runner.booked.used(); n != 2 {
		t.Errorf("%d workers booked after the run, want both: the table used them", n)
	}
	last := 0
	for i, d := range got {
		k, err := strconv.Atoi(d.lastKey[0])
		if err != nil || k < last || (k == last && !d.done) {
			t.Errorf("chunk %d delivered up to %v, after %d: not in key order", i+1, d.lastKey, last)
		}
		last = k
		if end := i == len(got)-1; d.done != end {
			t.Errorf("chunk %d: done %t", i+1, d.done)
		}
	}
	checkEachRowOnce(t, got, stream, rows)
	if len(got) < 3 {
		t.Errorf("%d chunks delivered: the table was not cut into spans", len(got))
	}
}

// An extra reader that cannot connect leaves the table to the others:
// it is read in full, each row once, with no more chunks at once than
// its one reader holds, and the worker it was booked is given back.
func TestLiveWorkerExtraReaderCannotStart(t *testing.T) {
	t.Parallel()
	const rows, chunkRows = 20000, 500
	var stream *fakeStream
	got, _ := workerRunWith(t, rows, chunkRows, 1, func(s *fakeStream) {
		stream = s
		connect := s.runner.cfg.Connect
		var calls atomic.Int32
		s.runner.cfg.Connect = func(ctx context.Context) (*pgx.Conn, error) {
			if calls.Add(1) > 1 { // the table's own connection, then none
				// Refused only after a while, as over a network: until
				// then the reader must not count, nor its two chunks.
				time.Sleep(200 * time.Millisecond)
				return nil, fmt.Errorf("too many connections (a test's)")
			}
			return connect(ctx)
		}
		s.afterOpen = func(Mark) {
			if n, _ := chunksHeld(s.x); n > 2 {
				t.Errorf("%d chunks held with one reader, want 2 at most", n)
			}
		}
	})
	if stream.readers != 1 {
		t.Errorf("%d readers read at once, want 1", stream.readers)
	}
	if n := stream.runner.booked.used(); n != 1 {
		t.Errorf("%d workers booked after the run, want 1: the extra that could not start is given back", n)
	}
	checkEachRowOnce(t, got, stream, rows)
}

// A table gives back, as soon as it knows, the extra worker it cannot
// use: without a key (its blocks are read one range after another), or
// with too few rows left, by the planner's estimate, to share.
func TestLiveWorkerGivesBackWhatItCannotUse(t *testing.T) {
	t.Parallel()
	const chunkRows = 500
	for _, tc := range []struct {
		name  string
		rows  int
		setUp func(t *testing.T, s *fakeStream)
	}{
		{"no key", 5000, func(_ *testing.T, s *fakeStream) {
			s.runner.cfg.KeyOf = func(context.Context, catalog.Name) ([]string, bool, error) { return nil, true, nil }
		}},
		{"too few rows to share", 1000, func(t *testing.T, s *fakeStream) {
			exec(t, s.conn, "ANALYZE items") // an estimate of 1000: under two spans after the first chunk
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stream *fakeStream
			got, _ := workerRunWith(t, tc.rows, chunkRows, 1, func(s *fakeStream) {
				stream = s
				tc.setUp(t, s)
			})
			if n := stream.runner.booked.used(); n != 1 {
				t.Errorf("%d workers booked after the run, want 1: the extra is given back", n)
			}
			if stream.readers != 1 {
				t.Errorf("%d readers read at once, want 1", stream.readers)
			}
			checkEachRowOnce(t, got, stream, tc.rows)
		})
	}
}
