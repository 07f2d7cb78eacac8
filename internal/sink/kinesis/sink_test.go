package kinesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv/kinesisproxy"
)

func client(endpoint string) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region: testenv.Region, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(testenv.AccessKeyID, testenv.SecretAccessKey, ""),
	})
}

type acks struct {
	mu   sync.Mutex
	seen map[uint64]int
}

func (a *acks) ack(seqs []uint64) {
	a.mu.Lock()
	for _, seq := range seqs {
		a.seen[seq]++
	}
	a.mu.Unlock()
}

func (a *acks) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seen)
}

// run puts n records spread over keys partition keys through a sink to
// endpoint, drains it, and returns what the stream holds.
func run(t *testing.T, endpoint, stream string, aggregate bool, n, keys int) (*acks, []TailRecord) {
	t.Helper()
	a := &acks{seen: map[uint64]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// kinesalite has no shard limits (as in every kinesalite test here):
	// the sink's would only slow the test down.
	s, err := New(ctx, Config{API: client(endpoint), Stream: ByName(stream), NoShardLimit: true, Aggregate: aggregate,
		FlushInterval: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Ack: a.ack})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	rng := rand.New(rand.NewPCG(7, 7))
	for seq := uint64(1); seq <= uint64(n); seq++ {
		key := "key-" + strconv.Itoa(rng.IntN(keys))
		data := fmt.Sprintf("%s|%d|%s", key, seq, strings.Repeat("x", rng.IntN(300)))
		if err := s.Put(ctx, sink.Record{Data: []byte(data), PartitionKey: key, Seq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	dctx, dcancel := context.WithTimeout(ctx, 60*time.Second)
	defer dcancel()
	if err := s.Drain(dctx); err != nil {
		t.Fatalf("Drain: %v (acked %d of %d)", err, a.count(), n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := s.Stats()
	t.Logf("%d records in %d Kinesis records, %d calls, %d retries (%d throttles)", st.Records, st.KinesisRecords, st.Calls, st.Retries, st.Throttles)
	return a, readStream(t, stream, n)
}

// readStream reads the stream (directly from kinesalite) until it holds
// want distinct records, and a little longer for duplicates.
func readStream(t *testing.T, stream string, want int) []TailRecord {
	t.Helper()
	var mu sync.Mutex
	var got []TailRecord
	distinct := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		_, _ = Tail(ctx, client(testenv.KinesisEndpoint(t)), ByName(stream), false, func(r TailRecord) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, r)
			distinct[string(r.Data)] = true
			return nil
		})
	}()
	for {
		mu.Lock()
		n := len(distinct)
		mu.Unlock()
		if n >= want {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the stream holds %d distinct records, want %d", n, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	cancel()
	mu.Lock()
	defer mu.Unlock()
	return append([]TailRecord(nil), got...)
}

// checkOrder verifies that every record is there, and that per partition
// key the first copies of the records come in the order they were Put. A
// re-sent batch repeats records that are already there: those are counted
// as duplicates, not as reordering.
func checkOrder(t *testing.T, recs []TailRecord, n int) (dups int) {
	t.Helper()
	last := map[string]int{}
	seen := map[int]bool{}
	for _, r := range recs {
		parts := strings.SplitN(string(r.Data), "|", 3)
		seq, _ := strconv.Atoi(parts[1])
		if parts[0] != r.PartitionKey {
			t.Fatalf("record %q came with partition key %q", r.Data[:20], r.PartitionKey)
		}
		if seen[seq] {
			dups++
			continue
		}
		if seq < last[r.PartitionKey] {
			t.Fatalf("key %s: record %d first arrived after %d: reordered", r.PartitionKey, seq, last[r.PartitionKey])
		}
		last[r.PartitionKey] = seq
		seen[seq] = true
	}
	for seq := 1; seq <= n; seq++ {
		if !seen[seq] {
			t.Fatalf("record %d is not in the stream", seq)
		}
	}
	return dups
}

func TestDeliversEveryRecordInOrderPerKey(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	for _, aggregate := range []bool{true, false} {
		t.Run(fmt.Sprintf("aggregate=%t", aggregate), func(t *testing.T) {
			t.Parallel()
			stream := testenv.Stream(t, testenv.KinesisClient(t, ep), 4)
			const n = 3000
			a, recs := run(t, ep, stream, aggregate, n, 40)
			if a.count() != n {
				t.Fatalf("acked %d of %d", a.count(), n)
			}
			if dups := checkOrder(t, recs, n); dups != 0 {
				t.Fatalf("%d duplicates without any fault", dups)
			}
			shards := map[string]bool{}
			for _, r := range recs {
				shards[r.ShardID] = true
			}
			if len(shards) != 4 {
				t.Fatalf("records landed on %d shards, want all 4", len(shards))
			}
		})
	}
}

// Partial failures, throttling and dropped connections: nothing is lost,
// nothing is reordered per key, duplicates are counted.
func TestFaultsLoseNothingAndNeverReorder(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	for _, aggregate := range []bool{true, false} {
		t.Run(fmt.Sprintf("aggregate=%t", aggregate), func(t *testing.T) {
			t.Parallel()
			stream := testenv.Stream(t, testenv.KinesisClient(t, ep), 4)
			proxy := kinesisproxy.Start(t, ep)
			faults := []kinesisproxy.Fault{kinesisproxy.FailSome, kinesisproxy.Throttle, kinesisproxy.DropBefore,
				kinesisproxy.DropAfter, kinesisproxy.Pass, kinesisproxy.FailSome, kinesisproxy.Pass}
			proxy.Plan = func(call int) kinesisproxy.Fault {
				if call >= 400 {
					return kinesisproxy.Pass
				}
				return faults[call%len(faults)]
			}
			proxy.FailRecord = func(call, i int) bool { return (call+i)%3 == 0 }
			const n = 3000
			a, recs := run(t, proxy.URL, stream, aggregate, n, 40)
			if a.count() != n {
				t.Fatalf("acked %d of %d", a.count(), n)
			}
			dups := checkOrder(t, recs, n)
			st := proxy.Stats()
			t.Logf("proxy: %+v; %d duplicates in %d records read", st, dups, len(recs))
			if st.FailedRecords == 0 || st.Throttled == 0 || st.DroppedBefore == 0 || st.DroppedAfter == 0 {
				t.Fatalf("not every fault was injected: %+v", st)
			}
		})
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// BenchmarkSink measures the sink alone against the local server: records
// of 200 bytes over 100 keys into 4 shards.
func BenchmarkSink(b *testing.B) {
	ep := testenv.KinesisEndpoint(b)
	stream := testenv.Stream(b, testenv.KinesisClient(b, ep), 4)
	for _, aggregate := range []bool{true, false} {
		b.Run(fmt.Sprintf("aggregate=%t", aggregate), func(b *testing.B) {
			a := &acks{seen: map[uint64]int{}}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := New(ctx, Config{API: client(ep), Stream: ByName(stream), NoShardLimit: true, Aggregate: aggregate, Ack: a.ack})
			if err != nil {
				b.Fatal(err)
			}
			go func() { _ = s.Run(ctx) }()
			data := []byte(strings.Repeat("x", 200))
			keys := make([]string, 100)
			for i := range keys {
				keys[i] = strconv.Itoa(i)
			}
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Put(ctx, sink.Record{Data: data, PartitionKey: keys[i%len(keys)], Seq: uint64(i + 1)}); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Drain(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
