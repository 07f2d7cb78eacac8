package kinesis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// The per-shard rate limit against a fake that enforces Kinesis' limits.

// fakeLimit is a shard's write limit per second.
type fakeLimit struct {
	records, bytes float64
}

// admit takes a record of size bytes (data and partition key) from the
// shard's limit at now, or reports that Kinesis would throttle it. Kinesis
// documents its limits per second, not how it accounts for them; the fake
// holds one second's worth of each and refills it continuously, the
// token bucket the KPL's rate limit assumes too. A record larger than one
// second's worth (a large record) passes a full shard and leaves it in
// debt, a burst the shard then makes up for, as Kinesis describes large
// records. Throttled records are not counted against the limit. Caller
// holds the fake's mu.
func (sh *fakeShard) admit(lim *fakeLimit, now time.Time, size int) bool {
	if sh.at.IsZero() {
		sh.records, sh.bytes = lim.records, lim.bytes
	} else if d := now.Sub(sh.at).Seconds(); d > 0 {
		sh.records = min(lim.records, sh.records+d*lim.records)
		sh.bytes = min(lim.bytes, sh.bytes+d*lim.bytes)
	}
	sh.at = now
	if sh.records < 1 || sh.bytes < min(float64(size), lim.bytes) {
		return false
	}
	sh.records--
	sh.bytes -= float64(size)
	return true
}

// The fake's limit: one second's worth passes at once, the next record is
// throttled alone, and the shard takes more as time passes.
func TestFakeKinesisShardLimit(t *testing.T) {
	// A clock of the test's own: only the test moves it.
	now := time.Unix(1e9, 0)
	clock := func() time.Time { return now }
	f := newFakeKinesis(1)
	f.limit, f.now = &fakeLimit{records: 10, bytes: 1 << 20}, clock
	put := func(n, size int) *kinesis.PutRecordsOutput {
		t.Helper()
		in := &kinesis.PutRecordsInput{StreamName: aws.String("fake")}
		for i := 0; i < n; i++ {
			in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte(strings.Repeat("x", size-1))})
		}
		out, err := f.PutRecords(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := put(10, 100); aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("%d of a second's worth of records throttled", aws.ToInt32(out.FailedRecordCount))
	}
	out := put(2, 100)
	if aws.ToInt32(out.FailedRecordCount) != 2 || aws.ToString(out.Records[0].ErrorCode) != codeThroughput {
		t.Fatalf("answer %+v, want both records past the limit throttled", out)
	}
	now = now.Add(300 * time.Millisecond) // 3 records' worth
	if out := put(2, 100); aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("%d records throttled after the shard refilled", aws.ToInt32(out.FailedRecordCount))
	}
	g := newFakeKinesis(1)
	g.limit, g.now = &fakeLimit{records: 1000, bytes: 1 << 20}, clock
	f = g
	if out := put(1, 1<<20); aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatal("a 1 MiB record throttled by a full shard")
	}
	if out := put(1, 10<<10); aws.ToInt32(out.FailedRecordCount) != 1 {
		t.Fatal("10 KiB more at once not throttled")
	}
	// A large record is a burst: it passes a full shard only, and leaves
	// the shard in debt for longer than a second's worth.
	g = newFakeKinesis(1)
	g.maxRecordKiB = 4096
	g.limit, g.now = &fakeLimit{records: 1000, bytes: 1 << 20}, clock
	f = g
	if out := put(1, 100<<10); aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatal("100 KiB throttled by a full shard")
	}
	if out := put(1, 3<<20); aws.ToInt32(out.FailedRecordCount) != 1 {
		t.Fatal("a 3 MiB record passed a shard short of a second's worth")
	}
	now = now.Add(150 * time.Millisecond) // over 100 KiB's worth: full again
	if out := put(1, 3<<20); aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatal("a 3 MiB record throttled by a full shard")
	}
	now = now.Add(300 * time.Millisecond)
	if out := put(1, 1<<10); aws.ToInt32(out.FailedRecordCount) != 1 {
		t.Fatal("1 KiB passed 300 ms after a 3 MiB burst, a debt of 2 MiB")
	}
}

// putPaced puts records 1..n at rate records per second.
func putPaced(fs *fakeSink, n, rate int, w func(uint64) (string, []byte)) {
	fs.t.Helper()
	start := time.Now()
	for seq := uint64(1); seq <= uint64(n); seq++ {
		time.Sleep(time.Until(start.Add(time.Duration(seq) * time.Second / time.Duration(rate))))
		key, data := w(seq)
		fs.put(seq, key, data)
	}
}

// Workloads at three times one shard's limit, into a fake that enforces
// it: with the sink's rate limit on and the same limits, nothing is
// throttled; with the sink's limits above the fake's (or off), records are
// throttled and retried, and still none is lost or reordered.
func TestFakeShardRateLimit(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name      string
		aggregate bool
		fake      fakeLimit
		records   int // the sink's limit
		n, rate   int // records put, per second
		keys      int
		maxPad    int
	}{
		// 600 records of 5 KiB on average in a second: 3 MiB/s.
		{"bytes, aggregated", true, fakeLimit{1000, mib}, 0, 600, 600, 50, 10 << 10},
		// 300 plain records a second for a limit of 100.
		{"records, plain", false, fakeLimit{100, mib}, 100, 300, 300, 300, 100},
		// 60 records a second, each a call of its own when idle, for a
		// limit of 20 Kinesis records: they must aggregate.
		{"records, aggregated", true, fakeLimit{20, mib}, 20, 60, 60, 60, 100},
	}
	for _, tt := range tests {
		for _, on := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/sink limit=%t", tt.name, on), func(t *testing.T) {
				t.Parallel()
				f := newFakeKinesis(1)
				f.limit = &tt.fake
				cfg := Config{Aggregate: tt.aggregate, FlushInterval: time.Hour, ShardRecordsPerSecond: tt.records}
				if !on {
					// Ten times the fake's: the sink sends what it has.
					cfg.ShardRecordsPerSecond, cfg.ShardBytesPerSecond = int(tt.fake.records)*10, int(tt.fake.bytes)*10
				}
				fs := startFake(t, f, cfg, true)
				putPaced(fs, tt.n, tt.rate, workload(tt.n, tt.keys, tt.maxPad))
				fs.drain()
				fs.stop()
				fs.checkAckedOnce(tt.n)
				dups, _ := checkStream(t, f, tt.n)
				inj, st := f.faults(), fs.s.Stats()
				t.Logf("%d calls of %d bytes on average, %d Kinesis records for %d records, %d throttled, %d retries, %v waited on the limit, %d duplicates",
					f.callCount(), st.Bytes/max(st.Calls, 1), st.KinesisRecords, st.Records, inj.throttled, st.Retries, st.LimitWait.Round(time.Millisecond), dups)
				if dups != 0 {
					t.Fatalf("%d duplicates without a call failing after storing", dups)
				}
				if on && (inj.throttled != 0 || st.Throttles != 0) {
					t.Fatalf("%d records throttled (%d throttling retries) with the sink's limit on", inj.throttled, st.Throttles)
				}
				if on && st.LimitWait == 0 {
					t.Fatal("the sink never waited on its limit at three times the limit")
				}
				if !on && (inj.throttled == 0 || st.Throttles == 0) {
					t.Fatalf("%d records throttled (%d throttling retries) with the sink's limits above the fake's, want some", inj.throttled, st.Throttles)
				}
			})
		}
	}
}
