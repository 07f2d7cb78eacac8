package kinesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/pg2kinesis/pg2kinesis/internal/backoff"
	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
	"github.com/pg2kinesis/pg2kinesis/internal/sink"
)

// Config says where and how to send.
type Config struct {
	API           API
	Stream        string
	Aggregate     bool          // KPL aggregates (the original's format) or plain records
	FlushInterval time.Duration // longest wait before a partial aggregate or batch goes out
	MaxBackoff    time.Duration // cap of the retry backoff
	MaxBuffered   int           // bytes of records (data, key, bookkeeping) held before Put blocks (default 16 MiB)
	Ack           sink.AckFunc
	Logger        *slog.Logger
	Metrics       *metrics.Kinesis // nil: counted, but not exported
}

// Sink is the Kinesis sink. Create it with New, then call Run.
type Sink struct {
	cfg     Config
	log     *slog.Logger
	shards  *shardMap
	queues  map[string]*shardQueue
	buffer  *semaphore.Weighted
	stats   statsBox
	retries retryLog

	stopped   chan struct{} // closed when Run returns: nothing will be sent any more
	resharded chan struct{} // capacity 1: a result came from an unexpected shard

	mu sync.RWMutex // guards shards and queues, which resharding replaces
}

var _ sink.Sink = (*Sink)(nil)

// New lists the stream's shards and prepares one queue per open shard.
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
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewKinesis()
	}
	shards, err := listShards(ctx, cfg.API, cfg.Stream)
	if err != nil {
		return nil, err
	}
	s := &Sink{
		cfg: cfg, log: cfg.Logger.With("stream", cfg.Stream),
		buffer:  semaphore.NewWeighted(int64(cfg.MaxBuffered)),
		stopped: make(chan struct{}), resharded: make(chan struct{}, 1),
	}
	s.useShards(shards)
	return s, nil
}

// useShards sets up one queue per open shard. Caller holds s.mu or is New.
func (s *Sink) useShards(shards *shardMap) {
	s.shards, s.queues = shards, map[string]*shardQueue{}
	for _, id := range shards.ids() {
		var agg aggregator
		if s.cfg.Aggregate {
			agg = newAggregator()
		}
		s.queues[id] = newShardQueue(id, shards.startKey(id), agg)
	}
}

// Put routes r to its shard's queue. It blocks while MaxBuffered bytes of
// user data are waiting.
func (s *Sink) Put(ctx context.Context, r sink.Record) error {
	// The aggregate framing adds a few dozen bytes: only a record near the
	// limit is worth the exact computation.
	if size := len(r.Data) + len(r.PartitionKey); size > maxRecordSize-1024 {
		if max := s.maxUserRecord(r.PartitionKey); size > max {
			return &sink.OversizeError{Size: size, Max: max}
		}
	}
	held := s.held(r)
	if err := s.buffer.Acquire(ctx, int64(held)); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	q := s.queues[s.shards.route(r.PartitionKey)]
	q.mu.Lock()
	// Wake the sender only when it has something new to do: arm its flush
	// timer for a first record, or send a sealed aggregate or a full batch.
	// Waking it for every record costs more than the record.
	wake := q.empty()
	if wake {
		q.oldest = time.Now()
	}
	if q.agg != nil {
		if q.agg.Len() > 0 && q.agg.SizeWith(r.PartitionKey, r.Data) > maxRecordSize {
			q.seal()
			wake = true
		}
		q.agg.Add(r.PartitionKey, r.Data)
		q.aggSeqs = append(q.aggSeqs, r.Seq)
		q.aggUser += held
	} else {
		q.ready = append(q.ready, &entry{
			data: append([]byte(nil), r.Data...), pk: r.PartitionKey, // Kinesis routes it by its key
			seqs: []uint64{r.Seq}, userSize: held,
		})
		wake = wake || len(q.ready) == maxCallRecords
	}
	q.mu.Unlock()
	if wake {
		q.signal()
	}
	return nil
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
func (s *Sink) held(r sink.Record) int {
	overhead := plainOverhead
	if s.cfg.Aggregate {
		overhead = aggregatedOverhead
	}
	return len(r.Data) + len(r.PartitionKey) + overhead
}

// maxUserRecord is the largest user record (data + key) that fits alone.
func (s *Sink) maxUserRecord(pk string) int {
	if !s.cfg.Aggregate {
		return maxRecordSize
	}
	return maxRecordSize - aggregateOverhead(pk)
}

// Run sends until ctx ends or a fatal error: one goroutine per shard, one
// request in flight per shard. When the stream was resharded it stops the
// senders, sends what the old queues hold and starts again on the new
// shards (see reshard).
func (s *Sink) Run(ctx context.Context) error {
	defer close(s.stopped)
	for {
		err := s.runShards(ctx)
		if !errors.Is(err, errResharded) || ctx.Err() != nil {
			return err
		}
		if err := s.reshard(ctx); err != nil {
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

// Drain sends at once whatever waits and returns when every queue is
// empty (everything acknowledged), ctx ends or Run has stopped.
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
		q.mu.Lock()
		q.flushNow = true
		q.mu.Unlock()
		q.signal()
	}
	s.mu.RUnlock()
	// Holding the whole buffer means every byte Put was released: acked.
	if err := s.buffer.Acquire(ctx, int64(s.cfg.MaxBuffered)); err != nil {
		return fmt.Errorf("drain Kinesis sink: %w", err)
	}
	s.buffer.Release(int64(s.cfg.MaxBuffered))
	return nil
}

// Close has nothing to release: Run's goroutines end with its context.
func (s *Sink) Close() error { return nil }

// sendLoop sends q's batches until ctx ends or stop is closed. stop lets
// a call in flight finish: aborting it would only make a duplicate.
func (s *Sink) sendLoop(ctx context.Context, q *shardQueue, stop <-chan struct{}) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		batch, wait := q.take(time.Now(), s.cfg.FlushInterval)
		if batch == nil {
			if wait < 0 {
				wait = time.Hour
			}
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-stop:
				return nil
			case <-q.wake:
			case <-timer.C:
			}
			continue
		}
		if err := s.deliver(ctx, q, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// deliver sends batch until every entry is stored. After a partial
// failure only the failed entries are sent again, in their order: the
// batch holds at most one entry per partition key (one aggregate, or
// distinct plain keys), so no key's records are reordered.
func (s *Sink) deliver(ctx context.Context, q *shardQueue, batch []*entry) error {
	pending := append([]*entry(nil), batch...)
	sent := make(map[*entry]bool, len(batch))
	for attempt := 0; ; attempt++ {
		failed, class, err := s.putRecords(ctx, q, pending)
		for _, e := range pending {
			if !failed[e] && err == nil {
				sent[e] = true
				s.ack(e)
			}
		}
		if err == nil && len(failed) == 0 {
			q.done(sent, time.Now())
			return nil
		}
		if class == classFatal {
			return fmt.Errorf("put records to Kinesis stream %q: %w", s.cfg.Stream, err)
		}
		if err == nil {
			next := pending[:0]
			for _, e := range pending {
				if failed[e] {
					next = append(next, e)
				}
			}
			pending = next
		}
		s.stats.add(func(st *Stats) {
			st.Retries++
			if class == classThrottle {
				st.Throttles++
			}
		})
		s.cfg.Metrics.Retried.Add(float64(len(pending)))
		if class == classThrottle {
			s.cfg.Metrics.Throttles.Inc()
		}
		wait := backoff.Delay(attempt, 100*time.Millisecond, s.cfg.MaxBackoff)
		level, quiet := s.retries.level(time.Now())
		args := []any{"shard", q.id, "records", len(pending), "err", errOrCount(err, len(failed)), "retry_in", wait.Round(time.Millisecond)}
		if quiet > 0 {
			args = append(args, "retries_since_last_warning", quiet)
		}
		s.log.Log(ctx, level, "Kinesis did not store every record; retrying", args...)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func errOrCount(err error, failed int) any {
	if err != nil {
		return err
	}
	return fmt.Sprintf("%d records failed", failed)
}

// noSDKRetries leaves retrying PutRecords to deliver, which never lets a
// retry reorder a key.
func noSDKRetries(o *kinesis.Options) { o.Retryer = aws.NopRetryer{} }

// putRecords makes one call. A call-level error fails every entry.
func (s *Sink) putRecords(ctx context.Context, q *shardQueue, entries []*entry) (failed map[*entry]bool, class errorClass, err error) {
	in := &kinesis.PutRecordsInput{StreamName: aws.String(s.cfg.Stream), Records: make([]types.PutRecordsRequestEntry, len(entries))}
	for i, e := range entries {
		in.Records[i] = types.PutRecordsRequestEntry{Data: e.data, PartitionKey: aws.String(e.pk)}
		if e.ehk != "" {
			in.Records[i].ExplicitHashKey = aws.String(e.ehk)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	out, err := s.cfg.API.PutRecords(cctx, in, noSDKRetries)
	took := time.Since(start)
	s.stats.add(func(st *Stats) { st.Calls++; st.CallTime += took })
	s.cfg.Metrics.ObserveCall(took)
	if err != nil {
		return nil, classify(err), err
	}
	if len(out.Records) != len(entries) {
		return nil, classRetry, fmt.Errorf("PutRecords answered %d results for %d records", len(out.Records), len(entries))
	}
	failed = map[*entry]bool{}
	class = classRetry
	for i, res := range out.Records {
		if res.ErrorCode != nil {
			failed[entries[i]] = true
			if recordErrorClass(*res.ErrorCode) == classThrottle {
				class = classThrottle
			}
			continue
		}
		if res.ShardId != nil && *res.ShardId != q.id {
			select {
			case s.resharded <- struct{}{}:
				s.log.Info("Kinesis stored a record on another shard than predicted: the stream was resharded; re-reading its shards",
					"predicted", q.id, "actual", *res.ShardId)
			default:
			}
		}
	}
	return failed, class, nil
}

func (s *Sink) ack(e *entry) {
	for _, seq := range e.seqs {
		s.cfg.Ack(seq)
	}
	s.buffer.Release(int64(e.userSize))
	s.stats.add(func(st *Stats) { st.Records += len(e.seqs); st.KinesisRecords++; st.Bytes += len(e.data) })
	s.cfg.Metrics.Records.Inc()
	s.cfg.Metrics.Bytes.Add(float64(len(e.data)))
}
