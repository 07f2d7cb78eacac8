package kinesis

import (
	"sync"
	"time"
)

// entry is one Kinesis record waiting to be sent: an aggregate of user
// records, or one plain user record.
type entry struct {
	data     []byte
	pk       string
	ehk      string
	seqs     []uint64 // the user records inside, in order
	userSize int      // bytes counted against the buffer (see Sink.held), released on ack
	// storedOn is the shard on which Kinesis stored this aggregate when it
	// was not the predicted one: the stream was resharded. It is
	// acknowledged, or its user records sent again, by Sink.reshard.
	storedOn string
}

func (e *entry) size() int { return len(e.data) + len(e.pk) }

// shardQueue holds what waits for one shard. The sink's Put appends; the
// shard's sender takes from the front. Entries leave the queue only when
// Kinesis has stored them, so order is kept across retries.
type shardQueue struct {
	id  string
	ehk string // routes this shard's aggregates (its starting hash key)

	mu      sync.Mutex
	agg     aggregator // the open aggregate (aggregated mode)
	aggSeqs []uint64
	aggUser int
	ready   []*entry // sealed, in order

	limit     *shardLimit // nil: no rate limit; used by the sender alone
	lastCall  time.Time   // when take last returned a batch (see minCallGap)
	callBytes int         // the most one call may carry (see callBytes)

	wake chan struct{} // capacity 1: Put or Drain has news for the sender
}

func newShardQueue(id, ehk string, agg aggregator) *shardQueue {
	return &shardQueue{id: id, ehk: ehk, agg: agg, callBytes: baseCallBytes, wake: make(chan struct{}, 1)}
}

func (q *shardQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// seal closes the open aggregate into an entry. Caller holds q.mu.
func (q *shardQueue) seal() {
	if q.agg == nil || q.agg.Len() == 0 {
		return
	}
	e := &entry{
		data:     q.agg.Encode(nil),
		pk:       q.agg.PartitionKey(),
		ehk:      q.ehk,
		seqs:     append([]uint64(nil), q.aggSeqs...),
		userSize: q.aggUser,
	}
	q.agg.Reset()
	q.aggSeqs, q.aggUser = q.aggSeqs[:0], 0
	q.ready = append(q.ready, e)
}

// empty reports whether nothing waits. Caller holds q.mu.
func (q *shardQueue) empty() bool {
	return len(q.ready) == 0 && (q.agg == nil || q.agg.Len() == 0)
}

// minCallGap is the least time between the starts of two calls of one
// shard that carry a partial batch (an open aggregate sealed early, plain
// records fewer than a call holds). A sender sends at once when its shard
// has nothing in flight, and under load the call's round trip is the
// batching interval; but a round trip of a millisecond or less (a local
// Kinesis-protocol server, the in-process fake) would then make a call of
// every few records, whose overhead costs more CPU than the records
// (BenchmarkFakeSink: 20 records an aggregate instead of thousands). The
// gap keeps batches at least 10 ms worth of the shard's load, like a
// round trip would. Against Kinesis, whose round trip is longer, it never
// delays a call, and a full aggregate or batch never waits for it.
const minCallGap = 10 * time.Millisecond

// take returns the next call's entries: everything that waits, as far as
// one call may carry it and the shard's rate limit allows. The sender
// calls it only when the shard has no request in flight, so what waits
// goes out at once (but see minCallGap); while a request is in flight,
// Put keeps adding to the open aggregate (or the plain records), and the
// next call carries all of it. Under load the call's round trip is the
// batching interval: batches grow with the load, and a lone record on an
// idle shard waits for nothing. Without a batch, take says how long to
// wait (-1: nothing waits), and whether the rate limit is the cause; the
// open aggregate keeps growing meanwhile.
//
// Aggregated: one aggregate per call, so that a failed call can never let
// a later aggregate of the same shard overtake it. Plain: up to 500
// records and callBytes (5 or 10 MiB) with distinct partition keys, so
// that a record that fails can only be overtaken by records of other keys.
func (q *shardQueue) take(now time.Time) (batch []*entry, wait time.Duration, limited bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.empty() {
		return nil, -1, false
	}
	gap := q.lastCall.Add(minCallGap).Sub(now) // > 0: a partial batch waits that long
	if q.agg != nil {
		size := q.agg.Size() // what the open aggregate would cost if sealed now
		if len(q.ready) > 0 {
			size = q.ready[0].size()
		} else if gap > 0 {
			return nil, gap, false
		}
		if q.limit != nil {
			if ok, wait := q.limit.fits(now, 1, size); !ok {
				return nil, wait, true
			}
		}
		if len(q.ready) == 0 {
			q.seal()
		}
		q.lastCall = now
		return q.ready[:1], 0, false
	}
	keys := map[string]bool{}
	bytes := 0
	for _, e := range q.ready {
		if len(batch) == maxCallRecords || keys[e.pk] {
			break
		}
		if len(batch) > 0 && bytes+e.size() > q.callBytes {
			// A lone record goes whatever its size: one larger than a call
			// (queued before a reshard found the stream's limit lowered)
			// would otherwise never leave, and Kinesis' refusal stops the
			// sink with an error naming it.
			break
		}
		if q.limit != nil && len(batch) > 0 && !q.limit.holds(len(batch)+1, bytes+e.size()) {
			break // more than a second's worth: fits would let it through a full bucket
		}
		if q.limit != nil {
			if ok, wait := q.limit.fits(now, len(batch)+1, bytes+e.size()); !ok {
				if len(batch) == 0 {
					return nil, wait, true
				}
				break // send what fits now; the rest waits for the next call
			}
		}
		keys[e.pk] = true
		bytes += e.size()
		batch = append(batch, e)
	}
	if len(batch) == len(q.ready) && gap > 0 {
		return nil, gap, false // every record fits: more could join
	}
	q.lastCall = now
	return batch, 0, false
}

// done removes the sent entries from the front of the queue.
func (q *shardQueue) done(sent map[*entry]bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	kept := q.ready[:0]
	for _, e := range q.ready {
		if !sent[e] {
			kept = append(kept, e)
		}
	}
	clear(q.ready[len(kept):])
	q.ready = kept
}
