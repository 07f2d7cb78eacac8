package kinesis

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// A shard split while the sink runs: it notices, sends what it holds, reads
// the new shards and goes on. Nothing is lost. Plain records keep their
// order per key. Aggregates made before the sink noticed the split carry
// the old shard's hash key and land on one child whatever their keys: a
// consumer reading the children in parallel can see those keys out of
// order (a known limit, documented; KPL has it too), so for aggregates
// only completeness and the move to the new shards are checked.
func TestResharding(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	for _, aggregate := range []bool{true, false} {
		t.Run(fmt.Sprintf("aggregate=%t", aggregate), func(t *testing.T) {
			c := client(ep)
			stream := testenv.Stream(t, testenv.KinesisClient(t, ep), 1)
			a := &acks{seen: map[uint64]int{}}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, err := New(ctx, Config{API: c, Stream: stream, Aggregate: aggregate, FlushInterval: 10 * time.Millisecond, Ack: a.ack,
				MaxBackoff: 500 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			const n = 2000
			put := func(from, to int) {
				for seq := from; seq <= to; seq++ {
					key := fmt.Sprintf("key-%d", seq%50)
					data := fmt.Sprintf("%s|%d|x", key, seq)
					if err := s.Put(ctx, sink.Record{Data: []byte(data), PartitionKey: key, Seq: uint64(seq)}); err != nil {
						t.Fatal(err)
					}
				}
			}
			put(1, n/2)
			if err := s.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			half := new(big.Int).Lsh(big.NewInt(1), 127).String()
			if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream),
				ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(half)}); err != nil {
				t.Fatal(err)
			}
			for {
				out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
				if err != nil {
					t.Fatal(err)
				}
				if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			put(n/2+1, n)
			if err := s.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			// The sink notices the split from the results of the calls after it.
			deadline := time.Now().Add(10 * time.Second)
			for {
				s.mu.RLock()
				queues := len(s.queues)
				s.mu.RUnlock()
				if queues == 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d shard queues 10s after the split, want 2", queues)
				}
				time.Sleep(20 * time.Millisecond)
			}
			put(n+1, n+200) // routed by the new shard map
			if err := s.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			recs := readStream(t, stream, n+200)
			var dups int
			if aggregate {
				dups = checkComplete(t, recs, n+200)
			} else {
				dups = checkOrder(t, recs, n+200)
			}
			shards := map[string]int{}
			for _, r := range recs {
				shards[r.ShardID]++
			}
			t.Logf("%d duplicates; records per shard %v", dups, shards)
			if len(shards) != 3 {
				t.Fatalf("records on %d shards, want the parent and both children", len(shards))
			}
		})
	}
}

// checkComplete verifies that every record is in the stream at least once.
func checkComplete(t *testing.T, recs []TailRecord, n int) (dups int) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[string(r.Data)] {
			dups++
		}
		seen[string(r.Data)] = true
	}
	for seq := 1; seq <= n; seq++ {
		if !seen[fmt.Sprintf("key-%d|%d|x", seq%50, seq)] {
			t.Fatalf("record %d is not in the stream", seq)
		}
	}
	return dups
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
