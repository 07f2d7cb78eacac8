package kpl

import (
	"testing"
)

// DecodeInShard keeps or drops an aggregate whole, as the KCL does.
func TestDecodeInShard(t *testing.T) {
	lowKey, highKey := keyBelow(t, Hash{Hi: 1 << 63}), keyAbove(t, Hash{Hi: 1 << 63})
	low := Shard{ID: "low", Start: Hash{}, End: Hash{Hi: 1<<63 - 1, Lo: ^uint64(0)}}
	high := Shard{ID: "high", Start: Hash{Hi: 1 << 63}, End: MaxHash}
	agg := func(adds ...add) []byte {
		var a Aggregator
		fill(&a, adds)
		return a.Encode(nil)
	}
	tests := []struct {
		name        string
		rec         []byte
		shard       Shard
		kept, dropd int
	}{
		{"plain record, never filtered", []byte("0,CDC,1"), low, 1, 0},
		{"every key in the shard", agg(add{pk: lowKey, data: []byte("a")}, add{pk: lowKey, data: []byte("b")}), low, 2, 0},
		{"one stray key drops the whole aggregate", agg(add{pk: lowKey, data: []byte("a")}, add{pk: highKey, data: []byte("b")}, add{pk: lowKey, data: []byte("c")}), low, 0, 3},
		{"the same aggregate on the other shard", agg(add{pk: lowKey, data: []byte("a")}, add{pk: highKey, data: []byte("b")}), high, 0, 2},
		{"an explicit hash key wins over the partition key", agg(add{pk: highKey, ehk: "0", data: []byte("a")}), low, 1, 0},
		{"an explicit hash key outside the shard", agg(add{pk: lowKey, ehk: MaxHash.String(), data: []byte("a")}), low, 0, 1},
		{"an unreadable explicit hash key", agg(add{pk: lowKey, ehk: "not a number", data: []byte("a")}), low, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users, dropped, err := DecodeInShard(tt.rec, tt.shard)
			if err != nil {
				t.Fatal(err)
			}
			if len(users) != tt.kept || dropped != tt.dropd {
				t.Fatalf("kept %d, dropped %d; want %d and %d", len(users), dropped, tt.kept, tt.dropd)
			}
		})
	}
	if _, _, err := DecodeInShard(aggregate([]byte{0x1a, 0x01}), low); err == nil {
		t.Fatal("a malformed aggregate: no error")
	}
}

// keyBelow and keyAbove find partition keys whose MD5 is below or at or
// above h.
func keyBelow(t *testing.T, h Hash) string {
	return findKey(t, func(k Hash) bool { return k.Compare(h) < 0 })
}
func keyAbove(t *testing.T, h Hash) string {
	return findKey(t, func(k Hash) bool { return k.Compare(h) >= 0 })
}

func findKey(t *testing.T, ok func(Hash) bool) string {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if k := string(rune('a'+i%26)) + string(rune('0'+i/26)); ok(HashKey(k)) {
			return k
		}
	}
	t.Fatal("no key found")
	return ""
}
