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

// kinesalite cannot raise a stream's maximum record size (it has no
// UpdateMaxRecordSize, and its DescribeStreamSummary reports no
// MaxRecordSizeInKiB): its streams are streams never raised, which the
// sink takes for 1 MiB records and 5 MiB calls, the limits kinesalite
// enforces. The largest records that fit are delivered, a backlog of them
// five to a plain call, and one byte more is an OversizeError as always.
// Raised streams are tested against the fake (largerecord_fake_test.go).
func TestDefaultStreamMaxRecord(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	c := testenv.KinesisClient(t, ep)
	stream := testenv.Stream(t, c, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	if kib := out.StreamDescriptionSummary.MaxRecordSizeInKiB; kib != nil {
		t.Fatalf("kinesalite reports a maximum record size of %d KiB, want none (a stream never raised)", *kib)
	}
	for _, aggregate := range []bool{false, true} {
		a := &acks{seen: map[uint64]int{}}
		s, err := New(ctx, Config{API: client(ep), Stream: ByName(stream), NoShardLimit: true, Aggregate: aggregate,
			FlushInterval: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Ack: a.ack})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.maxRecord.Load(); got != 1<<20 {
			t.Fatalf("aggregate=%t: maximum record size %d, want 1 MiB", aggregate, got)
		}
		for _, q := range s.queues {
			if q.callBytes != 5<<20 {
				t.Fatalf("aggregate=%t: calls of %d bytes, want 5 MiB", aggregate, q.callBytes)
			}
		}
		const n = 6
		for seq := uint64(1); seq <= n; seq++ { // before Run: a backlog
			key := fmt.Sprint("k", seq)
			if err := s.Put(ctx, sink.Record{Data: change(key, seq, s.maxUserRecord(key)), PartitionKey: key, Seq: seq}); err != nil {
				t.Fatalf("aggregate=%t: Put of the largest record: %v", aggregate, err)
			}
		}
		err = s.Put(ctx, sink.Record{Data: change("k", n+1, s.maxUserRecord("k")+1), PartitionKey: "k", Seq: n + 1})
		var over *sink.OversizeError
		if !errorsAs(err, &over) || over.Max != s.maxUserRecord("k") || over.Max > 1<<20 {
			t.Fatalf("aggregate=%t: Put of one byte more = %v, want an OversizeError", aggregate, err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Run(runCtx) }()
		err = s.Drain(ctx)
		stop()
		if runErr := <-done; runErr != nil || err != nil {
			t.Fatalf("aggregate=%t: Run = %v, Drain = %v", aggregate, runErr, err)
		}
		if got := a.count(); got != n {
			t.Fatalf("aggregate=%t: %d records acknowledged, want %d", aggregate, got, n)
		}
		if st := s.Stats(); !aggregate && st.Calls > 2 {
			t.Fatalf("%d plain calls for %d records of 1 MiB, want 5 to a call", st.Calls, n)
		}
	}
}
