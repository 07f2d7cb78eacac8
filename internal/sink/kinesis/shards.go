package kinesis

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis/kpl"
)

// aggregator is what a shard queue needs of kpl.Aggregator.
type aggregator interface {
	Len() int
	Size() int
	SizeWith(pk string, data []byte) int
	Add(pk string, data []byte)
	PartitionKey() string
	Encode(dst []byte) []byte
	Reset()
}

func newAggregator() aggregator { return kpl.NewAggregator() }

// aggregateOverhead is what an aggregate of one record with key pk adds
// to the record's data (magic, protobuf framing, MD5).
func aggregateOverhead(pk string) int {
	return kpl.NewAggregator().SizeWith(pk, nil) - len(pk)
}

// shardMap predicts the shard of a partition key from the open shards.
type shardMap struct {
	m     *kpl.ShardMap
	start map[string]string // shard id → starting hash key, decimal
	last  atomic.Pointer[routed]
}

// routed is a partition key and its shard. With the default partition key
// (the xid) a transaction's records share one key, so the last key's
// shard spares an MD5 per record. The sink's Put may be called from
// several goroutines: the pointer is swapped whole.
type routed struct{ pk, id string }

// shardLister is the part of the client that lists shards.
type shardLister interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, opts ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// allShards lists every shard of stream, open and closed, page by page.
func allShards(ctx context.Context, api shardLister, stream string) ([]types.Shard, error) {
	var shards []types.Shard
	var token *string
	for {
		in := &kinesis.ListShardsInput{NextToken: token}
		if token == nil {
			in.StreamName = aws.String(stream)
		}
		out, err := api.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards of Kinesis stream %q: %w", stream, err)
		}
		shards = append(shards, out.Shards...)
		if token = out.NextToken; token == nil {
			return shards, nil
		}
	}
}

func listShards(ctx context.Context, api shardLister, stream string) (*shardMap, error) {
	shards, err := allShards(ctx, api, stream)
	if err != nil {
		return nil, err
	}
	var open []kpl.Shard
	for _, sh := range shards {
		if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil {
			continue // closed by resharding: nothing more goes there
		}
		start, err := kpl.ParseHash(aws.ToString(sh.HashKeyRange.StartingHashKey))
		if err != nil {
			return nil, fmt.Errorf("shard %s: %w", aws.ToString(sh.ShardId), err)
		}
		end, err := kpl.ParseHash(aws.ToString(sh.HashKeyRange.EndingHashKey))
		if err != nil {
			return nil, fmt.Errorf("shard %s: %w", aws.ToString(sh.ShardId), err)
		}
		open = append(open, kpl.Shard{ID: aws.ToString(sh.ShardId), Start: start, End: end})
	}
	m, err := kpl.NewShardMap(open)
	if err != nil {
		return nil, fmt.Errorf("shards of Kinesis stream %q: %w", stream, err)
	}
	sm := &shardMap{m: m, start: map[string]string{}}
	for _, sh := range m.Shards() {
		sm.start[sh.ID] = sh.Start.String()
	}
	return sm, nil
}

func (s *shardMap) ids() []string {
	var ids []string
	for _, sh := range s.m.Shards() {
		ids = append(ids, sh.ID)
	}
	return ids
}

func (s *shardMap) startKey(id string) string { return s.start[id] }

// route returns the shard of partition key pk.
func (s *shardMap) route(pk string) string {
	if last := s.last.Load(); last != nil && last.pk == pk {
		return last.id
	}
	id := s.m.Lookup(kpl.HashKey(pk)).ID
	s.last.Store(&routed{pk: pk, id: id})
	return id
}
