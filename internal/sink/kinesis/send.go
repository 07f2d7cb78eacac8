package kinesis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pg2kinesis/pg2kinesis/internal/backoff"
)

// sendLoop sends q's batches until ctx ends or stop is closed. stop lets
// a call in flight finish: aborting it would only make a duplicate.
//
// A shard with no request in flight sends what waits at once (see take),
// unless its rate limit holds it back; Put wakes an idle sender.
// FlushInterval, the longest a record may wait, is only a backstop here:
// an idle sender looks at its queue at least that often even if no wake
// came.
func (s *Sink) sendLoop(ctx context.Context, q *shardQueue, stop <-chan struct{}) error {
	timer := time.NewTimer(s.cfg.FlushInterval)
	defer timer.Stop()
	var limited time.Time // since when the rate limit holds back what waits; zero if it does not
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		now := time.Now()
		batch, wait, byLimit := q.take(now)
		if batch == nil {
			switch {
			case wait < 0:
				wait = s.cfg.FlushInterval
			case byLimit && limited.IsZero():
				limited = now
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
		if !limited.IsZero() {
			s.limitWaited(now.Sub(limited))
			limited = time.Time{}
		}
		if err := s.deliver(ctx, q, batch); err != nil {
			if ctx.Err() != nil || errors.Is(err, errMisplaced) {
				return nil // a misplaced aggregate waits for the reshard, and so does all behind it
			}
			return err
		}
	}
}

// limitWaited counts time a shard's sender was held back by its rate limit.
func (s *Sink) limitWaited(d time.Duration) {
	s.stats.add(func(st *Stats) { st.LimitWait += d })
	s.cfg.Metrics.LimitWait.Add(d.Seconds())
}

// awaitLimit waits until q's rate limit allows a call of entries (a retry:
// the first call was allowed by take).
func (s *Sink) awaitLimit(ctx context.Context, q *shardQueue, entries []*entry) error {
	if q.limit == nil {
		return nil
	}
	n, size := callCost(entries)
	start := time.Now()
	for now := start; ; now = time.Now() {
		ok, wait := q.limit.fits(now, n, size)
		if ok {
			if now.After(start) {
				s.limitWaited(now.Sub(start))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func callCost(entries []*entry) (n, size int) {
	for _, e := range entries {
		size += e.size()
	}
	return len(entries), size
}

// errMisplaced stops a shard's sender when Kinesis stored its aggregate
// on another shard than predicted (see Sink.reshard).
var errMisplaced = errors.New("an aggregate was stored on another shard than predicted")

// deliver sends batch until every entry is stored. After a partial
// failure only the failed entries are sent again, in their order: the
// batch holds at most one entry per partition key (one aggregate, or
// distinct plain keys), so no key's records are reordered. An aggregate
// stored on another shard than predicted is not acknowledged: it stays at
// the front of q, and deliver returns errMisplaced.
func (s *Sink) deliver(ctx context.Context, q *shardQueue, batch []*entry) error {
	pending := append([]*entry(nil), batch...)
	sent := make(map[*entry]bool, len(batch))
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := s.awaitLimit(ctx, q, pending); err != nil {
				return err
			}
		}
		failed, class, err := s.putRecords(ctx, q, pending)
		if q.limit != nil { // charged on return: see shardLimit
			n, size := callCost(pending)
			q.limit.charge(time.Now(), n, size)
		}
		misplaced := false
		for _, e := range pending {
			if !failed[e] && err == nil {
				if e.storedOn != "" {
					misplaced = true
					continue
				}
				sent[e] = true
				s.ack(e)
			}
		}
		if misplaced {
			q.done(sent)
			return errMisplaced
		}
		if err == nil && len(failed) == 0 {
			q.done(sent)
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
	in := &kinesis.PutRecordsInput{StreamName: s.cfg.Stream.NameParam(), StreamARN: s.cfg.Stream.ARNParam(), Records: make([]types.PutRecordsRequestEntry, len(entries))}
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
			if entries[i].ehk != "" {
				// Its user records were picked for q's range; the shard it
				// landed on may not hold them all, and the KCL would then
				// drop them all. Plain records are placed by their own key.
				entries[i].storedOn = *res.ShardId
			}
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
	s.cfg.Ack(e.seqs)
	s.buffer.Release(int64(e.userSize))
	s.stats.add(func(st *Stats) { st.Records += len(e.seqs); st.KinesisRecords++; st.Bytes += len(e.data) })
	s.cfg.Metrics.Records.Inc()
	s.cfg.Metrics.Bytes.Add(float64(len(e.data)))
}
