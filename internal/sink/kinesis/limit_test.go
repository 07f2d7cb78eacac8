package kinesis

import (
	"fmt"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBucket(10, t0)
	if w := b.wait(t0, 10); w != 0 {
		t.Fatalf("a full bucket makes 10 wait %v", w)
	}
	b.take(t0, 10)
	if w := b.wait(t0, 1); w != 100*time.Millisecond+time.Microsecond {
		t.Fatalf("an empty bucket of 10/s makes 1 wait %v, want 100ms (and the rounding)", w)
	}
	if w := b.wait(t0.Add(100*time.Millisecond), 1); w != 0 {
		t.Fatalf("1 waits %v after 100 ms", w)
	}
	if w := b.wait(t0.Add(time.Hour), 11); w != 0 {
		t.Fatalf("a call larger than the bucket waits for a full bucket only, not %v", w)
	}
	b.take(t0.Add(time.Hour), 15) // and goes into debt: the bucket held one second's worth, not an hour's
	if w := b.wait(t0.Add(time.Hour), 1); w != 600*time.Millisecond+time.Microsecond {
		t.Fatalf("1 waits %v after a debt of 5 at 10/s, want 600ms", w)
	}
}

func TestShardLimitConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg            Config
		records, bytes int
		on, err        bool
	}{
		{Config{}, 1000, 1 << 20, true, false},
		{Config{ShardRecordsPerSecond: 20}, 20, 1 << 20, true, false},
		{Config{NoShardLimit: true, ShardBytesPerSecond: 1}, 0, 0, false, false},
		{Config{ShardBytesPerSecond: 1<<20 - 1}, 0, 0, false, true},
		{Config{ShardRecordsPerSecond: -1}, 0, 0, false, true},
	} {
		records, bytes, on, err := tc.cfg.limits()
		if records != tc.records || bytes != tc.bytes || on != tc.on || (err != nil) != tc.err {
			t.Errorf("%+v: limits() = %d, %d, %t, %v; want %d, %d, %t, error %t", tc.cfg, records, bytes, on, err, tc.records, tc.bytes, tc.on, tc.err)
		}
	}
}

// A partial batch waits until minCallGap has passed since the shard's last
// call; a sealed aggregate or a first call does not wait; the rate limit
// says it is the cause of its waits.
func TestTakeGap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	q := newShardQueue("s", "0", newAggregator())
	add := func(seq uint64) {
		q.agg.Add("k", []byte("x"))
		q.aggSeqs = append(q.aggSeqs, seq)
	}
	send := func(now time.Time) []*entry {
		t.Helper()
		batch, wait, limited := q.take(now)
		if batch == nil {
			t.Fatalf("take at %v: no batch, wait %v (limit: %t)", now.Sub(t0), wait, limited)
		}
		if q.limit != nil { // as deliver does when the call returns
			n, size := callCost(batch)
			q.limit.charge(now, n, size)
		}
		q.done(map[*entry]bool{batch[0]: true})
		return batch
	}
	add(1)
	send(t0) // the first call: at once
	add(2)
	if batch, wait, limited := q.take(t0.Add(time.Millisecond)); batch != nil || wait != minCallGap-time.Millisecond || limited {
		t.Fatalf("a partial aggregate 1 ms after a call: %d entries, wait %v, limit %t; want a wait of the rest of the gap", len(batch), wait, limited)
	}
	send(t0.Add(minCallGap))
	add(3)
	q.seal() // as Put does when the next record would not fit
	send(t0.Add(minCallGap + time.Millisecond))

	q.limit = newShardLimit(1, shardBytesPerSecond, t0)
	add(4)
	send(t0.Add(time.Hour))
	add(5)
	if batch, wait, limited := q.take(t0.Add(time.Hour + minCallGap)); batch != nil || wait <= 0 || !limited {
		t.Fatalf("a second record within a second at 1 a second: %d entries, wait %v, limit %t; want a wait for the limit", len(batch), wait, limited)
	}
}

// A backlog of plain records taken from a full bucket goes out within one
// second's worth a call: the first call after an idle spell must not
// carry 5 MiB to a shard that takes 1 MiB a second.
func TestTakeBacklogWithinLimit(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name            string
		records, bytes  int // the limit
		n, size         int // the backlog
		wantN, wantSize int // the most one call may carry
	}{
		{"bytes", shardRecordsPerSecond, shardBytesPerSecond, 400, 10 << 10, shardRecordsPerSecond, shardBytesPerSecond},
		{"records", 100, shardBytesPerSecond, 400, 100, 100, shardBytesPerSecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newShardQueue("s", "0", nil)
			q.limit = newShardLimit(tt.records, tt.bytes, t0)
			for i := range tt.n {
				q.ready = append(q.ready, &entry{data: make([]byte, tt.size), pk: fmt.Sprint("k", i), seqs: []uint64{uint64(i + 1)}})
			}
			batch, _, _ := q.take(t0.Add(time.Hour)) // the bucket is full
			n, size := callCost(batch)
			if n == 0 || n > tt.wantN || size > tt.wantSize {
				t.Fatalf("a call of %d records and %d bytes from a full bucket of %d records and %d bytes", n, size, tt.records, tt.bytes)
			}
		})
	}
}
