package kinesis

import (
	"sync"
	"time"
)

// Kinesis limits (PutRecords API reference).
const (
	maxRecordSize  = 1 << 20 // data + partition key of one Kinesis record
	maxCallRecords = 500
	maxCallBytes   = 5 << 20
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

	mu       sync.Mutex
	agg      aggregator // the open aggregate (aggregated mode)
	aggSeqs  []uint64
	aggUser  int
	ready    []*entry  // sealed, in order
	oldest   time.Time // when the oldest unsent user record arrived; zero if none
	flushNow bool      // Drain asked: send without waiting for the interval

	wake chan struct{} // capacity 1: Put or Drain has news for the sender
}

func newShardQueue(id, ehk string, agg aggregator) *shardQueue {
	return &shardQueue{id: id, ehk: ehk, agg: agg, wake: make(chan struct{}, 1)}
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

// take returns the next call's entries if one is due at now, and when to
// look again otherwise. Aggregated: one aggregate per call, so that a
// failed call can never let a later aggregate of the same shard overtake
// it. Plain: up to 500 records and 5 MiB with distinct partition keys, so
// that a record that fails can only be overtaken by records of other keys.
func (q *shardQueue) take(now time.Time, interval time.Duration) (batch []*entry, wait time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.empty() {
		return nil, -1
	}
	due := q.flushNow || !now.Before(q.oldest.Add(interval))
	if q.agg != nil {
		if len(q.ready) == 0 && due {
			q.seal()
		}
		if len(q.ready) == 0 {
			return nil, q.oldest.Add(interval).Sub(now)
		}
		return q.ready[:1], 0
	}
	full := len(q.ready) >= maxCallRecords
	if !due && !full {
		return nil, q.oldest.Add(interval).Sub(now)
	}
	keys := map[string]bool{}
	bytes := 0
	for _, e := range q.ready {
		if len(batch) == maxCallRecords || bytes+e.size() > maxCallBytes || keys[e.pk] {
			break
		}
		keys[e.pk] = true
		bytes += e.size()
		batch = append(batch, e)
	}
	return batch, 0
}

// done removes the sent entries from the front of the queue and restarts
// the flush clock for what is left.
func (q *shardQueue) done(sent map[*entry]bool, now time.Time) {
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
	if q.empty() {
		q.oldest = time.Time{}
		q.flushNow = false
	} else if len(q.ready) > 0 {
		q.oldest = now.Add(-time.Hour) // a backlog is always due
	}
}
