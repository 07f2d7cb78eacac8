package kinesis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/backoff"
	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis/kpl"
)

// errResharded stops the senders so that Run can re-read the shards.
var errResharded = errors.New("the stream was resharded")

// reshard moves the sink to the stream's current shards, every sender
// stopped between calls. Put is blocked only once the shards are listed:
// listing may be retried for as long as Kinesis is unreachable, and a Put
// blocked on s.mu could not see its context end. As with the KPL, a
// record that Kinesis stored on another shard than predicted is not taken
// as delivered: an aggregate whose user records the shard it landed on does
// not all hold is unpacked and its user records are routed again. All of
// them, where the KPL sends again only the ones outside the shard's range:
// the KCL drops such an aggregate whole. Then whatever the old queues hold
// (aggregates built for the old shards, unpacked; plain records, as they
// are) is routed again by the new shard map, queue by queue and in order.
// A key's pending records are all in one old queue, in the order Put got
// them, so they stay in that order ahead of anything Put adds afterwards.
func (s *Sink) reshard(ctx context.Context) error {
	shards, maxRecord, err := s.relist(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select { // the other senders' last calls may have signalled too
	case <-s.resharded:
	default:
	}
	old := s.queues
	s.useShards(shards, maxRecord)
	var kept, rerouted, moved int
	for _, q := range old {
		q.mu.Lock()
		q.seal()
		ready := q.ready
		q.ready = nil
		q.mu.Unlock()
		for _, e := range ready {
			switch {
			case e.ehk == "": // plain: Kinesis places it by its own key
				s.requeue(e)
				moved += len(e.seqs)
			case e.storedOn != "" && shards.covers(e.storedOn, e.data):
				s.ack(e)
				kept += len(e.seqs)
			default:
				if err := s.unpack(e); err != nil {
					return err
				}
				if e.storedOn != "" {
					rerouted += len(e.seqs)
				} else {
					moved += len(e.seqs)
				}
			}
		}
	}
	s.stats.add(func(st *Stats) { st.Rerouted += rerouted })
	s.cfg.Metrics.Rerouted.Add(float64(rerouted))
	s.log.Info("now sending to the stream's new shards", "before", len(old), "after", len(s.queues),
		"misplaced_kept", kept, "misplaced_sent_again", rerouted, "queued_rerouted", moved)
	return nil
}

// relist lists the shards and reads the stream's maximum record size
// again (it may have been raised meanwhile; a reshard is when the sink
// looks), retrying what may pass: the sink cannot send without them.
func (s *Sink) relist(ctx context.Context) (*shardMap, int, error) {
	for attempt := 0; ; attempt++ {
		shards, err := listShards(ctx, s.cfg.API, s.cfg.Stream)
		maxRecord := 0
		if err == nil {
			maxRecord, err = s.readMaxRecord(ctx)
		}
		if err == nil || classify(err) == classFatal || ctx.Err() != nil {
			return shards, maxRecord, err
		}
		wait := backoff.Delay(attempt, 100*time.Millisecond, s.cfg.MaxBackoff)
		s.log.Warn("cannot list the resharded stream's shards or read its maximum record size; retrying", "err", err, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// requeue appends plain entry e to its new shard's queue. Caller holds
// s.mu.
func (s *Sink) requeue(e *entry) {
	q := s.routes[s.shards.route(e.pk)]
	q.mu.Lock()
	q.ready = append(q.ready, e)
	q.mu.Unlock()
	q.signal()
}

// unpack routes the user records of aggregate e one by one, as Put would.
// Each keeps the share of MaxBuffered it held, so that it is released
// once, when the record is acknowledged. Caller holds s.mu.
func (s *Sink) unpack(e *entry) error {
	users, err := kpl.Decode(e.data)
	if err == nil && len(users) != len(e.seqs) {
		err = fmt.Errorf("%d user records for %d sequence numbers", len(users), len(e.seqs))
	}
	held := 0
	for _, u := range users {
		held += s.heldFor(u.PartitionKey, u.Data)
	}
	if err == nil && held != e.userSize {
		err = fmt.Errorf("user records of %d bytes held, %d counted", held, e.userSize)
	}
	if err != nil { // the sink's own encoding: a bug, not bad input
		return fmt.Errorf("route an aggregate to the resharded stream's shards: %w", err)
	}
	for i, u := range users {
		s.enqueue(u.PartitionKey, u.Data, e.seqs[i], s.heldFor(u.PartitionKey, u.Data))
	}
	return nil
}
