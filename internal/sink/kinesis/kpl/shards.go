package kpl

import (
	"cmp"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
)

// Hash is a 128-bit Kinesis hash key, Hi being the most significant half.
// Kinesis puts a record on the open shard whose hash key range holds its
// explicit hash key, or else the MD5 of its partition key.
type Hash struct{ Hi, Lo uint64 }

// MaxHash is the largest hash key, 2^128-1.
var MaxHash = Hash{^uint64(0), ^uint64(0)}

// HashKey returns the hash key Kinesis computes for a partition key: its
// MD5 (of the UTF-8 bytes) read as a big-endian 128-bit unsigned integer.
func HashKey(partitionKey string) Hash {
	sum := md5.Sum([]byte(partitionKey))
	return Hash{binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:])}
}

// Compare returns -1, 0 or +1 as h is less than, equal to or greater than o.
func (h Hash) Compare(o Hash) int {
	if c := cmp.Compare(h.Hi, o.Hi); c != 0 {
		return c
	}
	return cmp.Compare(h.Lo, o.Lo)
}

// String returns h in decimal, the form of ListShards' hash key ranges and
// of PutRecords' ExplicitHashKey.
func (h Hash) String() string {
	// 10^19 is the largest power of ten below 2^64: split h into base
	// 10^19 digits, at most three of them for 39 decimal digits.
	const base = 1e19
	var chunks [3]uint64
	i := len(chunks)
	for {
		var r uint64
		qHi := h.Hi / base
		h.Lo, r = bits.Div64(h.Hi%base, h.Lo, base)
		h.Hi = qHi
		i--
		chunks[i] = r
		if h == (Hash{}) {
			break
		}
	}
	b := strconv.AppendUint(make([]byte, 0, 39), chunks[i], 10)
	for _, c := range chunks[i+1:] {
		var pad [19]byte
		digits := strconv.AppendUint(pad[:0], c, 10)
		for range 19 - len(digits) {
			b = append(b, '0')
		}
		b = append(b, digits...)
	}
	return string(b)
}

// ParseHash reads a hash key in decimal, as ListShards gives them. It
// returns an error for anything but ASCII digits making a number from 0
// to 2^128-1.
func ParseHash(s string) (Hash, error) {
	if s == "" {
		return Hash{}, errors.New("hash key is empty, want a decimal number from 0 to 2^128-1")
	}
	var h Hash
	for i := 0; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			return Hash{}, fmt.Errorf("hash key %q is not a decimal number", s)
		}
		// h = h*10 + d, failing on any carry out of 128 bits.
		hiCarry, hi := bits.Mul64(h.Hi, 10)
		loCarry, lo := bits.Mul64(h.Lo, 10)
		hi, c1 := bits.Add64(hi, loCarry, 0)
		lo, c2 := bits.Add64(lo, uint64(d), 0)
		hi, c3 := bits.Add64(hi, 0, c2)
		if hiCarry != 0 || c1 != 0 || c3 != 0 {
			return Hash{}, fmt.Errorf("hash key %q is above 2^128-1", s)
		}
		h = Hash{hi, lo}
	}
	return h, nil
}

// Shard is an open shard's hash key range, both ends included.
type Shard struct {
	ID         string
	Start, End Hash
}

// Covers reports whether h is in the shard's hash key range.
func (s Shard) Covers(h Hash) bool { return s.Start.Compare(h) <= 0 && h.Compare(s.End) <= 0 }

// ShardMap finds the open shard of a hash key. It is immutable, and so
// safe for concurrent use.
type ShardMap struct{ shards []Shard } // sorted by Start

// NewShardMap builds a ShardMap from the open shards of a stream, in any
// order. Their IDs must be distinct and their ranges must cover 0 to
// 2^128-1 without gaps or overlaps, as the open shards of a Kinesis stream
// do; otherwise it returns an error naming the shards at fault, which
// usually means closed shards were left in or a page of ListShards was
// missed. It does not keep shards.
func NewShardMap(shards []Shard) (*ShardMap, error) {
	if len(shards) == 0 {
		return nil, errors.New("no open shards: a stream has at least one")
	}
	s := slices.Clone(shards)
	slices.SortFunc(s, func(a, b Shard) int { return a.Start.Compare(b.Start) })
	seen := make(map[string]bool, len(s))
	for i, sh := range s {
		if seen[sh.ID] {
			return nil, fmt.Errorf("shard %s is listed twice", sh.ID)
		}
		seen[sh.ID] = true
		if sh.End.Compare(sh.Start) < 0 {
			return nil, fmt.Errorf("shard %s ends at %s, before its start %s", sh.ID, sh.End, sh.Start)
		}
		if i == 0 {
			if (sh.Start != Hash{}) {
				return nil, fmt.Errorf("the first shard, %s, starts at %s, not 0: no open shard holds the hash keys below it", sh.ID, sh.Start)
			}
			continue
		}
		prev := s[i-1]
		if prev.End == MaxHash {
			return nil, fmt.Errorf("shards %s and %s overlap: %s already reaches 2^128-1", prev.ID, sh.ID, prev.ID)
		}
		switch next := prev.End.add1(); sh.Start.Compare(next) {
		case -1:
			return nil, fmt.Errorf("shards %s and %s overlap: %s ends at %s, %s starts at %s", prev.ID, sh.ID, prev.ID, prev.End, sh.ID, sh.Start)
		case 1:
			return nil, fmt.Errorf("shards %s and %s leave a gap: %s ends at %s, %s starts at %s", prev.ID, sh.ID, prev.ID, prev.End, sh.ID, sh.Start)
		}
	}
	if last := s[len(s)-1]; last.End != MaxHash {
		return nil, fmt.Errorf("the last shard, %s, ends at %s, not 2^128-1: no open shard holds the hash keys above it", last.ID, last.End)
	}
	return &ShardMap{shards: s}, nil
}

func (h Hash) add1() Hash {
	lo, carry := bits.Add64(h.Lo, 1, 0)
	return Hash{h.Hi + carry, lo}
}

// Lookup returns the shard whose range holds h. There always is one,
// since NewShardMap checked that the ranges cover every hash key. It
// takes O(log n) time and does not allocate.
func (m *ShardMap) Lookup(h Hash) Shard { return m.shards[m.Index(h)] }

// Index is Lookup's shard as its position in Shards, for a caller that
// keeps something per shard in a slice rather than a map by ID.
func (m *ShardMap) Index(h Hash) int {
	// Find the last shard that starts at or below h; shards[0] starts at
	// 0, so there is one.
	lo, hi := 0, len(m.shards)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if m.shards[mid].Start.Compare(h) <= 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// Len returns the number of shards.
func (m *ShardMap) Len() int { return len(m.shards) }

// Shards returns a copy of the shards in hash key order.
func (m *ShardMap) Shards() []Shard { return slices.Clone(m.shards) }
