package kinesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
	"github.com/pg2kinesis/pg2kinesis/internal/sink"
)

// Config says where and how to send.
type Config struct {
	API       API
	Stream    StreamRef
	Aggregate bool // KPL aggregates (the original's format) or plain records
	// FlushInterval is the longest a record may wait on an idle shard
	// (--flush-interval); a call in flight, the rate limit or retries can
	// hold it longer. The senders wait for no interval: a shard with no
	// request in flight sends at once, and while one is in flight the next
	// call's batch grows. The interval only bounds how long an idle sender
	// goes without looking at its queue.
	FlushInterval time.Duration
	MaxBackoff    time.Duration // cap of the retry backoff
	MaxBuffered   int           // bytes of records (data, key, bookkeeping) held before Put blocks (default 16 MiB)
	// Each shard is sent at most ShardRecordsPerSecond Kinesis records
	// (an aggregate is one) and ShardBytesPerSecond bytes per second;
	// 0: Kinesis' limits (1,000 and 1 MiB). NoShardLimit turns the limit
	// off (--shard-rate-limit off), for a server without shard limits,
	// such as kinesalite, where it would only slow the sink down.
	ShardRecordsPerSecond int
	ShardBytesPerSecond   int
	NoShardLimit          bool
	// Buffer, when set, is the budget of MaxBuffered bytes this sink
	// shares with the other streams' sinks (see Streams): memory stays
	// bounded by one buffer however many streams the tables go to.
	Buffer  *semaphore.Weighted
	Ack     sink.AckFunc
	Logger  *slog.Logger
	Metrics *metrics.Kinesis // nil: counted, but not exported
}

// Sink is the Kinesis sink. Create it with New, then call Run.
type Sink struct {
	cfg     Config
	log     *slog.Logger
	shards  *shardMap
	queues  map[string]*shardQueue
	routes  []*shardQueue // the queues in the order of shards.ids(), which shards.route indexes
	buffer  *semaphore.Weighted
	stats   statsBox
	retries retryLog

	// maxRecord is the stream's maximum record size in bytes, read at New
	// and after a reshard; an atomic, as Put reads it without s.mu (only
	// for a record near 1 MiB or larger: see Put).
	maxRecord atomic.Int64

	stopped   chan struct{} // closed when Run returns: nothing will be sent any more
	resharded chan struct{} // capacity 1: a result came from an unexpected shard

	mu sync.RWMutex // guards shards and queues, which resharding replaces
}

var _ sink.Sink = (*Sink)(nil)

// New lists the stream's shards, reads its maximum record size and
// prepares one queue per open shard.
func New(ctx context.Context, cfg Config) (*Sink, error) {
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = 16 << 20
	}
	if cfg.Buffer == nil {
		cfg.Buffer = semaphore.NewWeighted(int64(cfg.MaxBuffered))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewKinesis()
	}
	if _, _, _, err := cfg.limits(); err != nil {
		return nil, fmt.Errorf("kinesis sink: %w", err)
	}
	s := &Sink{
		cfg: cfg, log: cfg.Logger.With("stream", cfg.Stream),
		buffer:  cfg.Buffer,
		stopped: make(chan struct{}), resharded: make(chan struct{}, 1),
	}
	shards, err := listShards(ctx, cfg.API, cfg.Stream)
	if err != nil {
		return nil, err
	}
	maxRecord, err := s.readMaxRecord(ctx)
	if err != nil {
		return nil, err
	}
	s.useShards(shards, maxRecord)
	return s, nil
}

// useShards sets up one queue per open shard of a stream whose records
// may be maxRecord bytes. A shard that stays open keeps its rate limit's
// state: Kinesis' buckets do not refill because the stream was resharded.
// Caller holds s.mu or is New.
func (s *Sink) useShards(shards *shardMap, maxRecord int) {
	old := s.queues
	records, bytes, limited, _ := s.cfg.limits() // checked by New
	now := time.Now()
	switch prev := int(s.maxRecord.Swap(int64(maxRecord))); {
	case prev == 0 && maxRecord != baseRecordSize:
		s.log.Info("the stream takes records larger than 1 MiB", "max_record_bytes", maxRecord)
	case prev != 0 && prev != maxRecord:
		s.log.Info("the stream's maximum record size changed", "max_record_bytes", maxRecord, "before", prev)
	}
	s.shards, s.queues, s.routes = shards, map[string]*shardQueue{}, nil
	for _, id := range shards.ids() {
		var agg aggregator
		if s.cfg.Aggregate {
			agg = newAggregator()
		}
		q := newShardQueue(id, shards.startKey(id), agg)
		q.callBytes = callBytes(maxRecord)
		if prev := old[id]; prev != nil {
			q.limit = prev.limit
		} else if limited {
			q.limit = newShardLimit(records, bytes, now)
		}
		s.queues[id] = q
		s.routes = append(s.routes, q)
	}
}

// Put routes r to its shard's queue. It blocks while MaxBuffered bytes of
// user data are waiting. A record over the stream's maximum record size
// returns an *sink.OversizeError.
func (s *Sink) Put(ctx context.Context, r sink.Record) error {
	// The aggregate framing adds a few dozen bytes, and every stream takes
	// 1 MiB: only a record near 1 MiB or larger is worth the exact check.
	size := len(r.Data) + len(r.PartitionKey)
	large := size > baseRecordSize-1024
	if large {
		if err := s.checkSize(r.PartitionKey, size); err != nil {
			return err
		}
	}
	held := s.held(r)
	if err := s.buffer.Acquire(ctx, int64(held)); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if large {
		// Again: a reshard, while Put waited for the buffer, may have
		// found the stream's limit lowered, and Kinesis would refuse the
		// record for good.
		if err := s.checkSize(r.PartitionKey, size); err != nil {
			s.buffer.Release(int64(held))
			return err
		}
	}
	s.enqueue(r.PartitionKey, r.Data, r.Seq, held)
	return nil
}

// enqueue appends a user record to its shard's queue; held is what it
// counts against MaxBuffered, already acquired. Caller holds s.mu.
func (s *Sink) enqueue(pk string, data []byte, seq uint64, held int) {
	q := s.routes[s.shards.route(pk)]
	q.mu.Lock()
	// Wake the sender only when it may have something new to do: a first
	// record (an idle sender sends it at once; a busy one finds it when its
	// call returns), a sealed aggregate or a full batch. Waking it for
	// every record costs more than the record.
	wake := q.empty()
	if q.agg != nil {
		if q.agg.Len() > 0 && q.agg.SizeWith(pk, data) > aggregateTarget {
			q.seal()
			wake = true
		}
		q.agg.Add(pk, data)
		q.aggSeqs = append(q.aggSeqs, seq)
		q.aggUser += held
	} else {
		q.ready = append(q.ready, &entry{
			data: append([]byte(nil), data...), pk: pk, // Kinesis routes it by its key
			seqs: []uint64{seq}, userSize: held,
		})
		wake = wake || len(q.ready) == maxCallRecords
	}
	q.mu.Unlock()
	if wake {
		q.signal()
	}
}

// Bookkeeping per record, beyond its data and key, that the buffer counts:
// its sequence number in an aggregate; as a plain record, its entry and
// their allocations. Without it, MaxBuffered of small plain records took
// four times as much memory.
const (
	aggregatedOverhead = 16
	plainOverhead      = 128
)

// held is what r counts against MaxBuffered while it waits.
func (s *Sink) held(r sink.Record) int { return s.heldFor(r.PartitionKey, r.Data) }

// heldFor is at most MaxBuffered: a record larger than the buffer (a
// large record, a small buffer) then waits until the buffer is empty and
// holds all of it until acknowledged, instead of waiting forever.
func (s *Sink) heldFor(pk string, data []byte) int {
	overhead := plainOverhead
	if s.cfg.Aggregate {
		overhead = aggregatedOverhead
	}
	return min(len(data)+len(pk)+overhead, s.cfg.MaxBuffered)
}

// Run sends until ctx ends or a fatal error: one goroutine per shard, one
// request in flight per shard. When the stream was resharded it stops the
// senders, moves what the old queues hold to the new shards' queues and
// starts again on the new shards (see reshard).
func (s *Sink) Run(ctx context.Context) error {
	defer close(s.stopped)
	for {
		err := s.runShards(ctx)
		if ctx.Err() != nil {
			return nil // a stop, not a failure, even amid a reshard
		}
		if !errors.Is(err, errResharded) {
			return err
		}
		if err := s.reshard(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

func (s *Sink) runShards(ctx context.Context) error {
	s.mu.RLock()
	queues := make([]*shardQueue, 0, len(s.queues))
	for _, q := range s.queues {
		queues = append(queues, q)
	}
	s.mu.RUnlock()
	stop := make(chan struct{})
	resharded := false
	g, ctx := errgroup.WithContext(ctx)
	for _, q := range queues {
		g.Go(func() error { return s.sendLoop(ctx, q, stop) })
	}
	g.Go(func() error {
		select {
		case <-ctx.Done():
		case <-s.resharded:
			resharded = true
			close(stop)
		}
		return nil
	})
	if err := g.Wait(); err != nil || !resharded {
		return err
	}
	return errResharded
}

// Drain returns when every queue is empty (everything acknowledged), ctx
// ends or Run has stopped. The senders send as they always do: at once,
// within their shard's rate limit, which a drain does not lift (Kinesis
// would only throttle the excess).
func (s *Sink) Drain(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stopped:
			cancel()
		case <-ctx.Done():
		}
	}()
	s.mu.RLock()
	for _, q := range s.queues {
		q.signal() // nothing waits for an interval; a nudge costs nothing
	}
	s.mu.RUnlock()
	// Holding the whole buffer means every byte Put was released: acked.
	if err := s.buffer.Acquire(ctx, int64(s.cfg.MaxBuffered)); err != nil {
		return fmt.Errorf("drain Kinesis sink: %w", err)
	}
	s.buffer.Release(int64(s.cfg.MaxBuffered))
	st := s.Stats()
	s.log.Info("Kinesis sink drained", "records", st.Records, "kinesis_records", st.KinesisRecords,
		"bytes", st.Bytes, "calls", st.Calls, "call_time", st.CallTime.Round(time.Millisecond),
		"retries", st.Retries, "throttles", st.Throttles, "rerouted", st.Rerouted, "rate_limit_wait", st.LimitWait.Round(time.Millisecond))
	return nil
}

// Close has nothing to release: Run's goroutines end with its context.
func (s *Sink) Close() error { return nil }
