package kinesis

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis/kpl"
)

// tailFake serves Tail: shards as given, an empty open shard for every
// iterator, and getRecords's answer for each read.
type tailFake struct {
	shards     []types.Shard
	iterators  atomic.Int32
	getRecords func(ctx context.Context) (*kinesis.GetRecordsOutput, error)
}

func (f *tailFake) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	return &kinesis.ListShardsOutput{Shards: f.shards}, nil
}

func (f *tailFake) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	f.iterators.Add(1)
	return &kinesis.GetShardIteratorOutput{ShardIterator: in.ShardId}, nil
}

func (f *tailFake) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	return f.getRecords(ctx)
}

func tailShards(ids ...string) []types.Shard {
	var out []types.Shard
	for _, id := range ids {
		out = append(out, types.Shard{ShardId: aws.String(id), HashKeyRange: &types.HashKeyRange{
			StartingHashKey: aws.String("0"), EndingHashKey: aws.String(kpl.MaxHash.String())}})
	}
	return out
}

// A failure to read is Tail's error: `pg2kinesis tail` and the tests that
// read the stream back must not take a failed read for an empty stream.
// Only the caller's stop is a nil return.
func TestTailReturnsReadErrors(t *testing.T) {
	boom := errors.New("boom")
	f := &tailFake{shards: tailShards("shardId-000000000000"), getRecords: func(context.Context) (*kinesis.GetRecordsOutput, error) {
		return nil, boom
	}}
	if _, err := Tail(t.Context(), f, ByName("s"), false, func(TailRecord) error { return nil }); !errors.Is(err, boom) {
		t.Fatalf("Tail = %v, want the GetRecords error", err)
	}

	f.getRecords = func(ctx context.Context) (*kinesis.GetRecordsOutput, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return &kinesis.GetRecordsOutput{NextShardIterator: aws.String("next"),
			Records: []types.Record{{Data: []byte("x"), PartitionKey: aws.String("k"), SequenceNumber: aws.String("1")}}}, nil
	}
	stop := errors.New("stop")
	if _, err := Tail(t.Context(), f, ByName("s"), false, func(TailRecord) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("Tail = %v, want fn's error", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	if _, err := Tail(ctx, f, ByName("s"), false, func(TailRecord) error { cancel(); return nil }); err != nil {
		t.Fatalf("Tail = %v after the caller's stop, want nil", err)
	}
}

// A shard without a hash key range fails Tail before any shard is read:
// a reader started before would go on calling fn after Tail returned.
func TestTailBadShardStartsNoReader(t *testing.T) {
	shards := tailShards("shardId-000000000000", "shardId-000000000001")
	shards[1].HashKeyRange = nil
	f := &tailFake{shards: shards, getRecords: func(ctx context.Context) (*kinesis.GetRecordsOutput, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	if _, err := Tail(t.Context(), f, ByName("s"), false, func(TailRecord) error { return nil }); err == nil {
		t.Fatal("Tail = nil for a shard without a hash key range")
	}
	time.Sleep(50 * time.Millisecond) // a reader started before the error would have asked by now
	if n := f.iterators.Load(); n != 0 {
		t.Fatalf("%d shards read after Tail returned", n)
	}
}
