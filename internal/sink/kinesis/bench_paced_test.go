package kinesis

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
)

// BenchmarkFakeSinkPaced is the in-process twin of the latency part of
// make bench: records of 200 bytes, each its own key (single-row
// transactions under --partition-key xid), Put at a steady rate into 4
// shards of a fake that takes rtt to answer each call, as a network would.
// It reports the time from Put to acknowledgement (p50, p99) and how well
// the sink aggregated (recs/krec, B/call). Each iteration is one run of
// seconds s; run it with -benchtime 1x.
func BenchmarkFakeSinkPaced(b *testing.B) {
	for _, tc := range []struct {
		name  string
		rate  int // records per second
		rtt   time.Duration
		limit bool // the shard rate limit on (off: as before it existed, to compare)
	}{
		{"rate=2000/rtt=5ms", 2000, 5 * time.Millisecond, false},
		{"rate=2000/rtt=5ms/shard-limit", 2000, 5 * time.Millisecond, true},
		{"rate=2000/rtt=50ms", 2000, 50 * time.Millisecond, false},
		{"rate=20000/rtt=20ms", 20000, 20 * time.Millisecond, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const seconds = 3
			for i := 0; i < b.N; i++ {
				runPaced(b, tc.rate, seconds, tc.rtt, tc.limit)
			}
		})
	}
}

func runPaced(b *testing.B, rate, seconds int, rtt time.Duration, limit bool) {
	f := newFakeKinesis(4)
	f.bare = true
	api := &slowAPI{API: f, rtt: rtt}
	n := rate * seconds
	put := make([]time.Time, n+1)
	lat := make([]time.Duration, 0, n)
	var mu sync.Mutex
	ack := func(seqs []uint64) {
		now := time.Now()
		mu.Lock()
		for _, seq := range seqs {
			lat = append(lat, now.Sub(put[seq]))
		}
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := New(ctx, Config{API: api, Stream: ByName("fake"), Aggregate: true, NoShardLimit: !limit, Ack: ack})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	data := []byte(strings.Repeat("x", 200))
	start := time.Now()
	for seq := 1; seq <= n; seq++ {
		at := start.Add(time.Duration(seq) * time.Second / time.Duration(rate))
		time.Sleep(time.Until(at))
		mu.Lock()
		put[seq] = time.Now()
		mu.Unlock()
		if err := s.Put(ctx, sink.Record{Data: data, PartitionKey: strconv.Itoa(7_000_000 + seq), Seq: uint64(seq)}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Drain(ctx); err != nil {
		b.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	mu.Lock()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	mu.Unlock()
	reportBatching(b, s.Stats())
}

// slowAPI answers each PutRecords call after rtt, as a network would.
type slowAPI struct {
	API
	rtt time.Duration
}

func (a *slowAPI) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(a.rtt):
	}
	return a.API.PutRecords(ctx, in, opts...)
}
