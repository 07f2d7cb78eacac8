package snapshot

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
)

// Mode is --snapshot.
type Mode string

const (
	Never       Mode = "never"        // no initial snapshot; requested ones still run
	Initial     Mode = "initial"      // the tables never snapshotted for the slot, then stream
	InitialOnly Mode = "initial_only" // the same, then stop once it is delivered
)

// Modes lists the values --snapshot accepts.
var Modes = []Mode{Never, Initial, InitialOnly}

// Config is what a Runner needs.
type Config struct {
	Mode       Mode
	Slot       string
	Plugin     decode.Plugin
	StateTable catalog.Name
	ChunkRows  int           // rows per chunk (default DefaultChunkRows)
	Workers    int           // connections reading: tables at a time, and a table's readers (default DefaultWorkers)
	Poll       time.Duration // how often requests are looked for (default 5s)

	// Connect opens a normal connection (one per worker, and one for the
	// state).
	Connect func(ctx context.Context) (*pgx.Conn, error)
	// Targets lists the tables an initial snapshot covers, with their key
	// columns (none: read by physical ranges).
	Targets func(ctx context.Context) ([]catalog.Name, error)
	// KeyOf is a table's key as the stream keys its changes; ok false
	// when the table is gone.
	KeyOf func(ctx context.Context, n catalog.Name) (key []string, ok bool, err error)
	// Unpublished says why the run would not publish the reads of a
	// table ("" if it would): a table asked for that the run does not
	// publish is skipped, not read for nothing.
	Unpublished func(ctx context.Context, n catalog.Name) (string, error)
	// Flushed is the flush LSN: a chunk is delivered once it passes the
	// chunk's high watermark's commit.
	Flushed func() pglogrepl.LSN
	// Transient tells a lost or refused connection, which the setup
	// tries again, from an error the user must fix (nil: none is).
	Transient func(error) bool
	// Finished is called once an initial_only snapshot is delivered.
	Finished func()
	Logger   *slog.Logger
	// Metrics are updated by the runner (nil: a set of its own, not
	// served).
	Metrics *metrics.Snapshot
}

// DefaultChunkRows is --snapshot-chunk-rows' default, DefaultWorkers
// --snapshot-workers': a chunk is bounded by its text too (chunkBytes), so
// that on narrow rows it is large (few per-chunk round trips), on wide
// ones small. Two workers read one table at about 1.2 times the rate of one
// (cut into spans, read by both), and two tables at 1.3 times it, on the
// benchmark's 2 cores (bench/results/snapshot*.md); four were slower than
// two there, taking turns at the cores.
const (
	DefaultChunkRows = 100000
	DefaultWorkers   = 2
)

// maxUnrecorded is how many of a table's chunks may be placed in the
// stream and not yet recorded as acknowledged: it bounds what a crash
// re-sends to this many chunks, and stops a table from being read far
// ahead of a slow or throttled Kinesis. Enough to cover an ack's round
// trip (the flush interval, the call, the runner's tick) at the read's
// speed.
const maxUnrecorded = 16

// Runner reads the tables' snapshots chunk by chunk and hands them to the
// stream through an Exchange.
type Runner struct {
	cfg  Config
	x    *Exchange
	log  *slog.Logger
	acks chan delivered
	ends chan ended
	// The workers' stops, by table, and the tables asked for again while
	// they were read, whose worker is stopped to start over: Run's alone.
	stops   map[catalog.Name]context.CancelFunc
	restart map[catalog.Name]bool
	booked  *bookings

	reading atomic.Int32 // readers reading, of every table: they share chunkBytes

	mu     sync.Mutex
	tables map[catalog.Name]*tableRun // what Status reports
}

// delivered is a chunk placed in the stream, waiting to be acknowledged.
type delivered struct {
	table   catalog.Name
	lastKey []string
	rows    int64
	lsn     pglogrepl.LSN
	done    bool
	// window is its worker's: the place it took there is given back once
	// the chunk is recorded.
	window chan struct{}
}

type ended struct {
	table catalog.Name
	err   error
}

// drain queues the chunks the workers have sent.
func (r *Runner) drain(queue []delivered) []delivered {
	for {
		select {
		case d := <-r.acks:
			queue = append(queue, d)
		default:
			return queue
		}
	}
}

// queued are the tables with chunks not yet recorded: a table whose worker
// has ended is not started again before its end is recorded (its state
// says running until then).
func queued(queue []delivered) map[catalog.Name]bool {
	q := map[catalog.Name]bool{}
	for _, d := range queue {
		q[d.table] = true
	}
	return q
}

// errNoSnapshots: this server cannot serve snapshots.
var errNoSnapshots = errors.New("no snapshots")

// NewRun names a run: the marks of any other are ignored.
func NewRun() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// New returns a Runner that hands its chunks over through x.
func New(cfg Config, x *Exchange) *Runner {
	cfg.ChunkRows = cmp.Or(cfg.ChunkRows, DefaultChunkRows)
	cfg.Workers = cmp.Or(max(cfg.Workers, 0), DefaultWorkers)
	cfg.Poll = cmp.Or(cfg.Poll, 5*time.Second)
	cfg.Mode = cmp.Or(cfg.Mode, Never)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSnapshot()
	}
	return &Runner{cfg: cfg, x: x, log: cfg.Logger.With("slot", cfg.Slot),
		acks: make(chan delivered, cfg.Workers), ends: make(chan ended, cfg.Workers),
		stops: map[catalog.Name]context.CancelFunc{}, restart: map[catalog.Name]bool{}, booked: newBookings(),
		tables: map[catalog.Name]*tableRun{}}
}

// Run sets the state table up, then snapshots what is asked (at start by
// the mode, later by requests) until ctx ends. Call it once the stream
// runs: the watermarks must be read back.
func (r *Runner) Run(ctx context.Context) error {
	sc := &stateConn{connect: r.cfg.Connect, log: r.log}
	defer sc.close(ctx)
	switch err := r.start(ctx, sc); {
	case errors.Is(err, errNoSnapshots) || ctx.Err() != nil:
		return nil
	case err != nil && r.cfg.Mode == Never:
		// Nothing was asked of this run: requests are not served, the
		// stream goes on.
		r.log.Warn("snapshot: cannot look for requests; none will be served until a restart", "err", err)
		return nil
	case err != nil:
		return err
	}
	// The workers: each reports its end on r.ends, which has room for
	// them all; Run waits for them before it returns.
	var workers errgroup.Group
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		_ = workers.Wait()
	}()
	retry := map[catalog.Name]time.Time{} // tables whose worker failed: not before
	var queue []delivered
	var failed []ended // tables whose failure is to be recorded
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var polled time.Time
	// recheck fires once: at once for the first round (the tables to
	// start with), then shortly after a round that left chunks waiting
	// for the flush LSN, which the sink moves on its own time. The ticker
	// alone would add up to a tick to the start and to each table's end.
	recheck := time.After(0)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-recheck:
			recheck = nil
		case <-r.booked.freed:
			polled = time.Time{} // a table gave workers back: another may use them
		case d := <-r.acks:
			queue = append(queue, d)
		case e := <-r.ends:
			// The worker's last chunk was sent before its end: queue it
			// now, so that the table stays busy until it is recorded.
			queue = r.drain(queue)
			r.booked.end(e.table)
			r.stopped(e.table)
			if stop := r.stops[e.table]; stop != nil {
				stop()
				delete(r.stops, e.table)
			}
			switch {
			case r.restart[e.table]:
				delete(r.restart, e.table) // stopped to start over: no failure
			case e.err != nil && ctx.Err() == nil && r.cfg.Transient != nil && !r.cfg.Transient(e.err):
				// Not a lost connection: reading it again would fail
				// again until the user fixes it (a grant, say).
				r.log.Error("snapshot of a table failed; fix the cause and ask for it again (pg2kinesis snapshot --table)", "table", e.table, "err", e.err)
				failed = append(failed, ended{table: e.table, err: e.err})
			case e.err != nil && ctx.Err() == nil:
				r.log.Warn("snapshot of a table failed; it resumes from its last delivered chunk", "table", e.table, "err", e.err)
				retry[e.table] = time.Now().Add(5 * time.Second)
			}
			polled = time.Time{} // look for more work at once
		case <-tick.C:
		}
		// A failure from here on stops the snapshot, never the stream:
		// the state connection is opened again, the workers go on.
		conn := sc.get(ctx)
		if conn == nil {
			continue
		}
		var err error
		var finished bool
		if queue, finished, err = r.record(ctx, conn, queue); err != nil {
			sc.failed(ctx, err)
			continue
		}
		if len(queue) > 0 && recheck == nil {
			recheck = time.After(recheckAfter)
		}
		for len(failed) > 0 {
			f := failed[0]
			if err = Fail(ctx, conn, r.cfg.StateTable, r.cfg.Slot, f.table, f.err); err != nil {
				break
			}
			r.recorded(f.table, Failed)
			failed = failed[1:]
		}
		if err != nil {
			sc.failed(ctx, err)
			continue
		}
		if finished {
			polled = time.Time{} // a table is done: the next, or the end, at once
		}
		if time.Since(polled) < r.cfg.Poll {
			continue
		}
		polled = time.Now()
		left, err := r.schedule(ctx, conn, &workers, queued(queue), retry)
		if err != nil {
			sc.failed(ctx, err)
			continue
		}
		if r.cfg.Mode == InitialOnly && left == 0 && r.booked.empty() && len(queue) == 0 && len(failed) == 0 {
			if err := r.anyFailed(ctx, conn); err != nil {
				return err // the run ends with it: exit 1
			}
			r.log.Info("initial snapshot delivered; stopping (--snapshot=initial_only)")
			if r.cfg.Finished != nil {
				r.cfg.Finished()
			}
			return nil
		}
	}
}

// recheckAfter is how soon chunks waiting for the flush LSN are looked at
// again.
const recheckAfter = 5 * time.Millisecond

// record writes the progress of the chunks the flush LSN has passed, in
// the order they were placed in the stream.
func (r *Runner) record(ctx context.Context, conn *pgx.Conn, queue []delivered) (_ []delivered, finished bool, _ error) {
	flushed := r.cfg.Flushed()
	for len(queue) > 0 && queue[0].lsn <= flushed {
		d := queue[0]
		err := Advance(ctx, conn, r.cfg.StateTable, r.cfg.Slot, d.table, d.lastKey, d.rows, 1, d.done)
		switch {
		case errors.Is(err, errRequestedAgain):
			if stop := r.stops[d.table]; stop != nil && !r.restart[d.table] {
				r.log.Info("snapshot requested again while it ran: it starts over", "table", d.table)
				r.restart[d.table] = true
				stop()
			}
		case err != nil:
			return queue, finished, err
		case d.done:
			r.log.Info("snapshot of table delivered", "table", d.table)
			r.recorded(d.table, Done)
			finished = true
		}
		<-d.window
		queue = queue[1:]
	}
	return queue, finished, nil
}

// schedule starts a worker for each table pending or running, as long as
// readers are free (Workers in all), and returns how many are not done.
func (r *Runner) schedule(ctx context.Context, conn *pgx.Conn, workers *errgroup.Group,
	queued map[catalog.Name]bool, retry map[catalog.Name]time.Time) (int, error) {
	if ok, err := Exists(ctx, conn, r.cfg.StateTable); err != nil || !ok {
		return 0, err // no table, no request yet (--snapshot=never)
	}
	ps, err := LoadState(ctx, conn, r.cfg.StateTable, r.cfg.Slot)
	if err != nil {
		return 0, err
	}
	r.loaded(ps)
	left := 0
	var start []Progress
	for _, p := range ps {
		if p.State == Done || p.State == Failed {
			continue
		}
		left++
		if !r.booked.running(p.Table) && !queued[p.Table] && !time.Now().Before(retry[p.Table]) {
			start = append(start, p)
		}
	}
	used := r.booked.used()
	for i, p := range start {
		if used >= r.cfg.Workers {
			break
		}
		readers := readersFor(r.cfg.Workers, used, len(start)-i-1)
		used += readers
		r.booked.book(p.Table, readers)
		wctx, stop := context.WithCancel(ctx)
		r.stops[p.Table] = stop
		workers.Go(func() error {
			r.ends <- ended{table: p.Table, err: r.table(wctx, p, readers-1)}
			return nil // a failed table is tried again, not the end of the run
		})
	}
	return left, nil
}

// gone skips a table whose snapshot failed with err if the table is gone,
// whatever err says (a read's undefined table, a describe that finds
// nothing), and returns err otherwise. conn is the table's: closed if its
// reader's query was cut short when another reader failed, so another is
// opened then.
func (r *Runner) gone(ctx context.Context, conn *pgx.Conn, table catalog.Name, err error) error {
	if conn.IsClosed() {
		c, cerr := r.cfg.Connect(ctx)
		if cerr != nil {
			return err
		}
		defer func() { _ = c.Close(context.WithoutCancel(ctx)) }()
		conn = c
	}
	if there, xerr := Exists(ctx, conn, table); xerr == nil && !there {
		r.log.Warn("table dropped while it was snapshotted: skipped", "table", table, "err", err)
		return Skip(ctx, conn, r.cfg.StateTable, r.cfg.Slot, table)
	}
	return err
}
