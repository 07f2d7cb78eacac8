package kinesis

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

func TestEnsureStream(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	c := client(ep)
	name := testenv.Name(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	err := EnsureStream(ctx, c, ByName(name), "us-east-1", StreamSpec{Shards: 1})
	if err == nil || !strings.Contains(err.Error(), `"`+name+`"`) || !strings.Contains(err.Error(), "us-east-1") || !strings.Contains(err.Error(), "--create-stream") {
		t.Fatalf("missing stream: %v, want an error naming it, the region and --create-stream", err)
	}
	if err := EnsureStream(ctx, c, ByName(name), "us-east-1", StreamSpec{Create: true, Shards: 3}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(name)})
	})
	out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil || aws.ToInt32(out.StreamDescriptionSummary.OpenShardCount) != 3 {
		t.Fatalf("created stream: %+v %v, want 3 open shards", out, err)
	}
	if err := EnsureStream(ctx, c, ByName(name), "us-east-1", StreamSpec{Create: true, Shards: 3}); err != nil {
		t.Fatalf("existing stream with --create-stream: %v", err)
	}
}

func TestOversizeRecord(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	stream := testenv.Stream(t, testenv.KinesisClient(t, ep), 1)
	for _, aggregate := range []bool{true, false} {
		s, err := New(context.Background(), Config{API: client(ep), Stream: ByName(stream), NoShardLimit: true, Aggregate: aggregate, Ack: func([]uint64) {}})
		if err != nil {
			t.Fatal(err)
		}
		big := make([]byte, 1<<20)
		err = s.Put(context.Background(), sink.Record{Data: big, PartitionKey: "k", Seq: 1})
		var over *sink.OversizeError
		if !errorsAs(err, &over) || over.Size != 1<<20+1 {
			t.Fatalf("aggregate=%t: Put of 1 MiB = %v, want an OversizeError", aggregate, err)
		}
		// The largest record that fits is accepted.
		fits := make([]byte, s.maxUserRecord("k")-1)
		if err := s.Put(context.Background(), sink.Record{Data: fits, PartitionKey: "k", Seq: 2}); err != nil {
			t.Fatalf("aggregate=%t: Put of the largest record: %v", aggregate, err)
		}
	}
}

// The buffer counts each record's key and bookkeeping, not only its data:
// small records would otherwise take several times MaxBuffered of memory.
func TestBufferCountsBookkeeping(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	stream := testenv.Stream(t, testenv.KinesisClient(t, ep), 1)
	for _, tc := range []struct {
		aggregate bool
		overhead  int
	}{{true, aggregatedOverhead}, {false, plainOverhead}} {
		const n, data = 10, 10
		held := data + len("k") + tc.overhead
		// Run is not started: nothing is sent, nothing is released.
		s, err := New(context.Background(), Config{API: client(ep), Stream: ByName(stream), NoShardLimit: true, Aggregate: tc.aggregate,
			MaxBuffered: n * held, Ack: func([]uint64) {}})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := s.Put(context.Background(), sink.Record{Data: make([]byte, data), PartitionKey: "k", Seq: uint64(i + 1)}); err != nil {
				t.Fatalf("aggregate=%t: Put %d of %d: %v", tc.aggregate, i+1, n, err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err = s.Put(ctx, sink.Record{Data: make([]byte, data), PartitionKey: "k", Seq: n + 1})
		cancel()
		if err == nil {
			t.Fatalf("aggregate=%t: record %d of %d bytes held taken into a buffer of %d: want Put to wait", tc.aggregate, n+1, held, n*held)
		}
	}
}
