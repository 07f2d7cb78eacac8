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

// A split, then a merge of the children, while the sink sends records with
// keys like --partition-key pk's. Read back as a KCL consumer reads (Tail:
// children after their parents, aggregates outside their shard's range
// dropped), the stream holds every record, each key's in order, with
// aggregates as with plain records. Before the sink sent misplaced
// aggregates' records again, the split lost records here (the KCL drops
// an aggregate that the split put on a child not holding all its keys).
// kinesalite has no UpdateShardCount, which Kinesis does with splits and
// merges like these.
func TestReshardingUnderLoad(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	for _, aggregate := range []bool{true, false} {
		t.Run(fmt.Sprintf("aggregate=%t", aggregate), func(t *testing.T) {
			c := client(ep)
			stream := testenv.Stream(t, testenv.KinesisClient(t, ep), 1)
			a := &acks{seen: map[uint64]int{}}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			s, err := New(ctx, Config{API: c, Stream: ByName(stream), NoShardLimit: true, Aggregate: aggregate, FlushInterval: 10 * time.Millisecond, Ack: a.ack,
				MaxBackoff: 500 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			const n = 12000
			put := make(chan error, 1)
			go func() {
				for seq := 1; seq <= n; seq++ {
					key := fmt.Sprintf("public.orders:%d", seq%500)
					data := fmt.Sprintf("%s|%d|x", key, seq)
					if err := s.Put(ctx, sink.Record{Data: []byte(data), PartitionKey: key, Seq: uint64(seq)}); err != nil {
						put <- err
						return
					}
					if seq%100 == 0 {
						time.Sleep(5 * time.Millisecond) // spreads the load over the reshards
					}
				}
				put <- nil
			}()
			waitAcked(t, a, n/4)
			half := new(big.Int).Lsh(big.NewInt(1), 127).String()
			reshard(t, c, stream, func() error {
				_, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream),
					ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(half)})
				return err
			})
			waitAcked(t, a, n/2)
			reshard(t, c, stream, func() error {
				_, err := c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(stream),
					ShardToMerge: aws.String("shardId-000000000001"), AdjacentShardToMerge: aws.String("shardId-000000000002")})
				return err
			})
			if err := <-put; err != nil {
				t.Fatal(err)
			}
			if err := s.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if a.count() != n {
				t.Fatalf("acked %d of %d", a.count(), n)
			}
			recs := readStream(t, stream, n)
			dups := checkOrder(t, recs, n)
			shards := map[string]int{}
			for _, r := range recs {
				shards[r.ShardID]++
			}
			st := s.Stats()
			t.Logf("%d user records sent again after landing on the wrong shard; %d duplicates read; records per shard %v", st.Rerouted, dups, shards)
			if aggregate && st.Rerouted == 0 {
				t.Fatal("no aggregate landed on a shard not holding all its records: the split did not hit the sink under load")
			}
			if len(shards) < 3 {
				t.Fatalf("records on %d shards, want the parent and the children", len(shards))
			}
		})
	}
}

// reshard runs op (a split or merge) and waits until the stream is active
// again.
func reshard(t *testing.T, c *kinesis.Client, stream string, op func() error) {
	t.Helper()
	if err := op(); err != nil {
		t.Fatal(err)
	}
	for {
		out, err := c.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err != nil {
			t.Fatal(err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitAcked waits until n records are acknowledged.
func waitAcked(t *testing.T, a *acks, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for a.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d records acknowledged after a minute, want %d", a.count(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
