package kpl

import "fmt"

// The tests describe shards as ListShards does, in decimal; the sink
// parses ListShards' output itself (sink/kinesis, shards.go).

// ShardRange is a shard as ListShards describes it, hash keys in decimal.
type ShardRange struct {
	ID                             string
	StartingHashKey, EndingHashKey string
}

// ParseShardMap builds a ShardMap from the open shards of a stream as
// ListShards gives them (leave out the closed shards, those with an
// EndingSequenceNumber). It returns an error naming the shard for a hash
// key that ParseHash rejects, and otherwise what NewShardMap returns.
func ParseShardMap(ranges []ShardRange) (*ShardMap, error) {
	shards := make([]Shard, len(ranges))
	for i, r := range ranges {
		start, err := ParseHash(r.StartingHashKey)
		if err != nil {
			return nil, fmt.Errorf("shard %s: starting %w", r.ID, err)
		}
		end, err := ParseHash(r.EndingHashKey)
		if err != nil {
			return nil, fmt.Errorf("shard %s: ending %w", r.ID, err)
		}
		shards[i] = Shard{ID: r.ID, Start: start, End: end}
	}
	return NewShardMap(shards)
}
