package kpl

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math/big"
	"sort"
)

// Hash is a 128-bit hash key: Kinesis maps a partition key to the shard
// whose range holds the MD5 of the key read as a big-endian integer.
type Hash struct{ Hi, Lo uint64 }

// HashKey is the hash key Kinesis computes for a partition key.
func HashKey(partitionKey string) Hash {
	sum := md5.Sum([]byte(partitionKey))
	return Hash{binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:])}
}

func (h Hash) less(o Hash) bool { return h.Hi < o.Hi || (h.Hi == o.Hi && h.Lo < o.Lo) }

// String is the decimal form Kinesis uses for hash keys.
func (h Hash) String() string {
	b := new(big.Int).SetUint64(h.Hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(h.Lo)).String()
}

var maxHash = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// ParseHash reads a decimal hash key, as ListShards gives them.
func ParseHash(s string) (Hash, error) {
	b, ok := new(big.Int).SetString(s, 10)
	if !ok || b.Sign() < 0 || b.Cmp(maxHash) > 0 {
		return Hash{}, fmt.Errorf("hash key %q is not a number from 0 to 2^128-1", s)
	}
	lo := new(big.Int).And(b, new(big.Int).SetUint64(^uint64(0))).Uint64()
	return Hash{new(big.Int).Rsh(b, 64).Uint64(), lo}, nil
}

// Shard is an open shard's hash key range, ends included.
type Shard struct {
	ID         string
	Start, End Hash
}

// ShardMap finds the open shard of a hash key.
type ShardMap struct{ shards []Shard }

// NewShardMap builds a map from the open shards of a stream. Their ranges
// must cover 0 to 2^128-1 without gaps or overlaps, as the open shards of
// a Kinesis stream do.
func NewShardMap(shards []Shard) (*ShardMap, error) {
	if len(shards) == 0 {
		return nil, fmt.Errorf("no open shards")
	}
	s := append([]Shard(nil), shards...)
	sort.Slice(s, func(i, j int) bool { return s[i].Start.less(s[j].Start) })
	if (s[0].Start != Hash{}) {
		return nil, fmt.Errorf("shard %s starts at %s, not 0: the open shards do not cover every hash key", s[0].ID, s[0].Start)
	}
	for i, sh := range s {
		if sh.End.less(sh.Start) {
			return nil, fmt.Errorf("shard %s ends before it starts", sh.ID)
		}
		if i+1 < len(s) {
			next := sh.End
			next.Lo++
			if next.Lo == 0 {
				next.Hi++
			}
			if s[i+1].Start != next {
				return nil, fmt.Errorf("shards %s and %s leave a gap or overlap", sh.ID, s[i+1].ID)
			}
		}
	}
	if last := s[len(s)-1].End; last != (Hash{^uint64(0), ^uint64(0)}) {
		return nil, fmt.Errorf("shard %s ends at %s, not 2^128-1", s[len(s)-1].ID, last)
	}
	return &ShardMap{shards: s}, nil
}

// Lookup returns the shard that holds h.
func (m *ShardMap) Lookup(h Hash) Shard {
	i := sort.Search(len(m.shards), func(i int) bool { return h.less(m.shards[i].Start) })
	return m.shards[i-1] // shards[0] starts at 0, so i >= 1
}

// Shards lists the shards in hash key order.
func (m *ShardMap) Shards() []Shard { return append([]Shard(nil), m.shards...) }
