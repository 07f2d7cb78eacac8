package kinesis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// Against kinesalite: streams a Streams sink creates at their first record
// (--create-stream) receive their records, and only theirs.
func TestStreamsCreatesAndFillsStreams(t *testing.T) {
	endpoint := testenv.KinesisEndpoint(t)
	api := client(endpoint)
	base := testenv.Name(t)
	names := []string{base + ".public.orders", base + ".public.items", base + ".audit.Order_Items_"}
	t.Cleanup(func() {
		for _, n := range names {
			_, _ = api.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(n)})
		}
	})
	a := &acks{seen: map[uint64]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := NewStreams(Config{API: api, NoShardLimit: true, Aggregate: true, FlushInterval: 20 * time.Millisecond, Ack: a.ack},
		func(ctx context.Context, stream string) error {
			return EnsureStream(ctx, api, ByName(stream), testenv.Region, StreamSpec{Create: true, Shards: 2})
		})
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	const n = 300
	for seq := uint64(1); seq <= n; seq++ {
		stream := names[seq%3]
		r := sink.Record{Data: fmt.Appendf(nil, "%s|%d", stream, seq), PartitionKey: fmt.Sprint("k", seq%5), Stream: stream, Seq: seq}
		if err := m.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v (acked %d of %d)", err, a.count(), n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, name := range names {
		recs := readStream(t, name, n/3)
		for _, r := range recs {
			if !strings.HasPrefix(string(r.Data), name+"|") {
				t.Errorf("stream %s holds %q", name, r.Data)
			}
		}
		if dups := checkStreamOrder(t, name, recs); dups > 0 {
			t.Logf("stream %s: %d duplicates", name, dups)
		}
	}
}

// checkStreamOrder checks that within a stream each key's records come in
// the order of their sequence numbers, and returns the duplicates.
func checkStreamOrder(t *testing.T, stream string, recs []TailRecord) (dups int) {
	t.Helper()
	last := map[string]int{}
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[string(r.Data)] {
			dups++
			continue
		}
		seen[string(r.Data)] = true
		var seq int
		if _, err := fmt.Sscanf(string(r.Data)[len(stream)+1:], "%d", &seq); err != nil {
			t.Fatalf("stream %s: record %q: %v", stream, r.Data, err)
		}
		if seq < last[r.PartitionKey] {
			t.Errorf("stream %s, key %s: record %d after %d", stream, r.PartitionKey, seq, last[r.PartitionKey])
		}
		last[r.PartitionKey] = seq
	}
	return dups
}
