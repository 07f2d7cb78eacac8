package kinesis

import (
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
