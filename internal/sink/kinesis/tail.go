package kinesis

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"golang.org/x/sync/errgroup"

	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis/kpl"
)

// ReadAPI is the part of the Kinesis client that Tail uses.
type ReadAPI interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, opts ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, opts ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// TailRecord is one user record read back from the stream.
type TailRecord struct {
	ShardID        string
	SequenceNumber string // of the Kinesis record that carried it
	PartitionKey   string
	Data           []byte
}

// Tail reads every shard of stream, from its oldest record (TRIM_HORIZON)
// or only new ones (latest), de-aggregates KPL aggregates and calls fn for
// each user record, one call at a time, in order within a shard. It
// returns when ctx ends (nil), when every shard is closed and read, or at
// the first error from Kinesis or fn. As Kinesis consumers must, it reads a
// shard made by resharding only after its parents, so that each key's
// records come in order. Shards created after it started are not read.
//
// It de-aggregates as the KCL does (see kpl.DecodeInShard): an aggregate
// holding a user record whose hash key is outside the range of the shard
// it is read from is dropped whole, and dropped counts its user records.
// What Tail prints is then what a KCL consumer gets.
func Tail(ctx context.Context, api ReadAPI, stream StreamRef, latest bool, fn func(TailRecord) error) (dropped int, err error) {
	shards, err := allShards(ctx, api, stream)
	if err != nil {
		return 0, err
	}
	var mu sync.Mutex
	emit := func(r TailRecord) error {
		mu.Lock()
		defer mu.Unlock()
		return fn(r)
	}
	drop := func(n int) {
		mu.Lock()
		dropped += n
		mu.Unlock()
	}
	done := map[string]chan struct{}{}
	ranges := make([]kpl.Shard, len(shards))
	for i, sh := range shards {
		done[aws.ToString(sh.ShardId)] = make(chan struct{})
		// Every range before any reader starts: returning with readers
		// started would leave them calling fn after Tail returned.
		if ranges[i], err = shardRange(sh); err != nil {
			return 0, err
		}
	}
	// gctx ends when Wait returns, whatever happened: only the caller's
	// ctx tells a stop from a failure.
	g, gctx := errgroup.WithContext(ctx)
	for i, sh := range shards {
		id, rng := aws.ToString(sh.ShardId), ranges[i]
		g.Go(func() error {
			for _, parent := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
				if ch, ok := done[aws.ToString(parent)]; ok && parent != nil {
					select {
					case <-ch:
					case <-gctx.Done():
						return nil
					}
				}
			}
			if err := tailShard(gctx, api, stream, rng, latest, emit, drop); err != nil {
				return err
			}
			close(done[id])
			return nil
		})
	}
	err = g.Wait()
	mu.Lock()
	defer mu.Unlock()
	if ctx.Err() != nil {
		return dropped, nil
	}
	return dropped, err
}

func tailShard(ctx context.Context, api ReadAPI, stream StreamRef, sh kpl.Shard, latest bool, emit func(TailRecord) error, drop func(int)) error {
	id := sh.ID
	typ := types.ShardIteratorTypeTrimHorizon
	if latest {
		typ = types.ShardIteratorTypeLatest
	}
	it, err := api.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: stream.NameParam(), StreamARN: stream.ARNParam(), ShardId: aws.String(id), ShardIteratorType: typ,
	})
	if err != nil {
		return fmt.Errorf("shard iterator of %s: %w", id, err)
	}
	iter := it.ShardIterator
	for iter != nil {
		out, err := api.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("get records of %s: %w", id, err)
		}
		for _, rec := range out.Records {
			users, dropped, err := kpl.DecodeInShard(rec.Data, sh)
			if err != nil {
				return fmt.Errorf("record %s of %s: %w", aws.ToString(rec.SequenceNumber), id, err)
			}
			if dropped > 0 {
				drop(dropped)
			}
			for _, u := range users {
				pk := u.PartitionKey
				if pk == "" {
					pk = aws.ToString(rec.PartitionKey)
				}
				if err := emit(TailRecord{ShardID: id, SequenceNumber: aws.ToString(rec.SequenceNumber), PartitionKey: pk, Data: u.Data}); err != nil {
					return err
				}
			}
		}
		iter = out.NextShardIterator
		if len(out.Records) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}
