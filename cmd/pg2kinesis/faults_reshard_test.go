package main

import (
	"context"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// (g) The stream resharded under the workload, aggregated, --partition-key
// pk: the first of its two shards split, then the upper child merged with
// the second shard. Read back as a KCL consumer reads (children after
// parents, an aggregate dropped whole when its shard's range does not hold
// all its records), no change is lost and every row's changes are in
// commit order. Aggregates built for the old shards land on the first
// child: pg2kinesis sends their records again, as the KPL does.
func TestFaultReshard(t *testing.T) {
	t.Parallel()
	r := newRig(t, testenv.Database(t))
	d := r.begin(t, r.args(t, r.dsn, r.ep))
	r.waitRecords(t, 500, d)
	c := testenv.KinesisClient(t, r.ep)
	quarter := new(big.Int).Lsh(big.NewInt(1), 126).String()
	resharded := func(n int, op func(ctx context.Context) error) {
		t.Helper()
		if err := op(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the stream to be active again", func() bool {
			out, err := c.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(r.stream)})
			return err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
		})
		r.w.waitTxns(t, 300)
		waitLog(t, d, "now sending to the stream's new shards", n)
	}
	resharded(1, func(ctx context.Context) error {
		_, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(r.stream),
			ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(quarter)})
		return err
	})
	resharded(2, func(ctx context.Context) error {
		_, err := c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(r.stream),
			ShardToMerge: aws.String("shardId-000000000003"), AdjacentShardToMerge: aws.String("shardId-000000000001")})
		return err
	})
	// The reader reads the shards there were when it started: read again,
	// from the oldest record, with the children.
	r.reader.stop()
	r.reader = readStream(t, r.ep, r.stream)
	r.w.waitTxns(t, 300)
	r.end(t, d)
	for _, line := range regexp.MustCompile(`msg="now sending to the stream's new shards".*`).FindAllString(d.log(), -1) {
		t.Log(strings.TrimSpace(line))
	}
}
