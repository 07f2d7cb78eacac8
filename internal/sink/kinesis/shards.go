package kinesis

import (
	"context"
	"fmt"
	"sync"

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
// to the record's data (magic, protobuf framing, MD5) when the record is
// near the stream's limit of limit bytes: protobuf lengths of a large
// record take 3 bytes (4 past 2 MiB) where an empty one's take 1, so the
// overhead of an empty record let Put accept records up to 4 bytes too
// large, which Kinesis then rejected and the sink stopped.
func aggregateOverhead(pk string, limit int) int {
	return kpl.NewAggregator().SizeWithLen(pk, limit) - limit - len(pk)
}

// shardMap predicts the shard of a partition key from the open shards.
type shardMap struct {
	m     *kpl.ShardMap
	all   map[string]kpl.Shard // every shard listed, closed ones too: where Kinesis may have stored a record
	start map[string]string    // open shard id → starting hash key, decimal

	// The last key routed and its shard's index in ids(). With the
	// default partition key (the xid) a transaction's records share one
	// key, so it spares an MD5 per record. Put may be called from several
	// goroutines; a lock rather than an atomic pointer to a new pair,
	// which with single-row transactions, every key a new one, cost an
	// allocation per record.
	lastMu sync.Mutex
	last   routed
}

type routed struct {
	pk  string
	i   int
	set bool
}

// shardLister is the part of the client that lists shards.
type shardLister interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, opts ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// allShards lists every shard of stream, open and closed, page by page.
func allShards(ctx context.Context, api shardLister, stream StreamRef) ([]types.Shard, error) {
	var shards []types.Shard
	var token *string
	for {
		in := &kinesis.ListShardsInput{NextToken: token}
		if token == nil {
			in.StreamName, in.StreamARN = stream.NameParam(), stream.ARNParam()
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

func listShards(ctx context.Context, api shardLister, stream StreamRef) (*shardMap, error) {
	shards, err := allShards(ctx, api, stream)
	if err != nil {
		return nil, err
	}
	var open []kpl.Shard
	all := make(map[string]kpl.Shard, len(shards))
	for _, sh := range shards {
		r, err := shardRange(sh)
		if err != nil {
			return nil, fmt.Errorf("shards of Kinesis stream %q: %w", stream, err)
		}
		all[r.ID] = r
		if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil {
			continue // closed by resharding: nothing more goes there
		}
		open = append(open, r)
	}
	m, err := kpl.NewShardMap(open)
	if err != nil {
		return nil, fmt.Errorf("shards of Kinesis stream %q: %w", stream, err)
	}
	sm := &shardMap{m: m, all: all, start: map[string]string{}}
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

// covers reports whether shard id (open or closed) holds every user
// record of an aggregate: false for an unknown shard or an unreadable
// aggregate, which are then sent again.
func (s *shardMap) covers(id string, aggregate []byte) bool {
	sh, ok := s.all[id]
	if !ok {
		return false
	}
	users, dropped, err := kpl.DecodeInShard(aggregate, sh)
	return err == nil && dropped == 0 && len(users) > 0
}

func (s *shardMap) startKey(id string) string { return s.start[id] }

// route returns the index in ids() of the shard of partition key pk.
func (s *shardMap) route(pk string) int {
	if s.m.Len() == 1 {
		return 0 // every key's: no MD5 needed
	}
	s.lastMu.Lock()
	last := s.last
	s.lastMu.Unlock()
	if last.set && last.pk == pk {
		return last.i
	}
	i := s.m.Index(kpl.HashKey(pk))
	s.lastMu.Lock()
	s.last = routed{pk: pk, i: i, set: true}
	s.lastMu.Unlock()
	return i
}

// shardRange is sh's hash key range.
func shardRange(sh types.Shard) (kpl.Shard, error) {
	id := aws.ToString(sh.ShardId)
	if sh.HashKeyRange == nil {
		return kpl.Shard{}, fmt.Errorf("shard %s: ListShards gave no hash key range", id)
	}
	start, err := kpl.ParseHash(aws.ToString(sh.HashKeyRange.StartingHashKey))
	if err != nil {
		return kpl.Shard{}, fmt.Errorf("shard %s: starting %w", id, err)
	}
	end, err := kpl.ParseHash(aws.ToString(sh.HashKeyRange.EndingHashKey))
	if err != nil {
		return kpl.Shard{}, fmt.Errorf("shard %s: ending %w", id, err)
	}
	return kpl.Shard{ID: id, Start: start, End: end}, nil
}
