package kpl

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

// An aggregate of two user records, "a" under key "k1" and "bc" under key
// "k2", then "d" under "k1" again, written out by hand from the format:
// protobuf fields in order (table entries, then records), then the MD5.
func TestEncodeMatchesHandBuiltBytes(t *testing.T) {
	proto := []byte{
		0x0a, 0x02, 'k', '1', // partition_key_table[0] = "k1" (field 1, length-delimited)
		0x0a, 0x02, 'k', '2', // partition_key_table[1] = "k2"
		0x1a, 0x05, 0x08, 0x00, 0x1a, 0x01, 'a', // records: {partition_key_index: 0, data: "a"}
		0x1a, 0x06, 0x08, 0x01, 0x1a, 0x02, 'b', 'c', // {partition_key_index: 1, data: "bc"}
		0x1a, 0x05, 0x08, 0x00, 0x1a, 0x01, 'd', // {partition_key_index: 0, data: "d"}
	}
	sum := md5.Sum(proto)
	want := append(append([]byte{0xF3, 0x89, 0x9A, 0xC2}, proto...), sum[:]...)

	a := NewAggregator()
	a.Add("k1", []byte("a"))
	a.Add("k2", []byte("bc"))
	a.Add("k1", []byte("d"))
	got := a.Encode(nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("Encode\n got  % x\n want % x", got, want)
	}
	if a.Size() != len(want)+len("k1") || a.PartitionKey() != "k1" || a.Len() != 3 {
		t.Fatalf("Size %d (want %d), PartitionKey %q, Len %d", a.Size(), len(want)+2, a.PartitionKey(), a.Len())
	}
}

func TestRoundTripAndSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	a := NewAggregator()
	for round := 0; round < 50; round++ {
		a.Reset()
		type rec struct {
			pk   string
			data []byte
		}
		var want []rec
		for i := rng.IntN(300); i >= 0; i-- {
			pk := fmt.Sprintf("key-%d-é", rng.IntN(20))
			if rng.IntN(5) == 0 {
				pk = strings.Repeat("p", 1+rng.IntN(256))
			}
			data := make([]byte, rng.IntN(400))
			for j := range data {
				data[j] = byte(rng.IntN(256))
			}
			predicted := a.SizeWith(pk, data)
			a.Add(pk, data)
			if a.Size() != predicted {
				t.Fatalf("SizeWith predicted %d, Size is %d", predicted, a.Size())
			}
			want = append(want, rec{pk, data})
		}
		enc := a.Encode(nil)
		if a.Size() != len(enc)+len(a.PartitionKey()) {
			t.Fatalf("Size %d, encoded %d + key %d", a.Size(), len(enc), len(a.PartitionKey()))
		}
		got, err := Decode(enc)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("decoded %d records, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].PartitionKey != want[i].pk || !bytes.Equal(got[i].Data, want[i].data) {
				t.Fatalf("record %d: %q %x, want %q %x", i, got[i].PartitionKey, got[i].Data, want[i].pk, want[i].data)
			}
		}
	}
}

func TestDecodePlainAndBroken(t *testing.T) {
	got, err := Decode([]byte("0,CDC,1,public.a,INSERT,1"))
	if err != nil || len(got) != 1 || string(got[0].Data) != "0,CDC,1,public.a,INSERT,1" || got[0].PartitionKey != "" {
		t.Fatalf("plain record: %+v %v", got, err)
	}
	a := NewAggregator()
	a.Add("k", []byte("v"))
	enc := a.Encode(nil)
	bad := append([]byte(nil), enc...)
	bad[6] ^= 0xff
	if _, err := Decode(bad); err == nil || !strings.Contains(err.Error(), "MD5") {
		t.Fatalf("corrupted aggregate: %v, want an MD5 error", err)
	}
	// A valid MD5 over a malformed protobuf.
	proto := []byte{0x1a, 0x05, 0x08}
	sum := md5.Sum(proto)
	if _, err := Decode(append(append(magic[:], proto...), sum[:]...)); err == nil {
		t.Fatal("truncated protobuf decoded")
	}
	// A record pointing past the key table.
	proto = []byte{0x1a, 0x05, 0x08, 0x03, 0x1a, 0x01, 'x'}
	sum = md5.Sum(proto)
	if _, err := Decode(append(append(magic[:], proto...), sum[:]...)); err == nil || !strings.Contains(err.Error(), "out of") {
		t.Fatalf("bad index: %v", err)
	}
}

func TestHashKeyAndShardMap(t *testing.T) {
	for _, pk := range []string{"", "1234", "public.orders:A-7", "Zoë"} {
		sum := md5.Sum([]byte(pk))
		want := new(big.Int).SetBytes(sum[:]).String()
		if got := HashKey(pk).String(); got != want {
			t.Errorf("HashKey(%q) = %s, want %s", pk, got, want)
		}
		if h, err := ParseHash(HashKey(pk).String()); err != nil || h != HashKey(pk) {
			t.Errorf("ParseHash round trip of %q: %v %v", pk, h, err)
		}
	}
	// Four even shards, as CreateStream makes them.
	quarter := new(big.Int).Lsh(big.NewInt(1), 126)
	var shards []Shard
	for i := 0; i < 4; i++ {
		start := new(big.Int).Mul(quarter, big.NewInt(int64(i)))
		end := new(big.Int).Sub(new(big.Int).Add(start, quarter), big.NewInt(1))
		s, _ := ParseHash(start.String())
		e, _ := ParseHash(end.String())
		shards = append(shards, Shard{ID: fmt.Sprintf("shardId-%012d", i), Start: s, End: e})
	}
	m, err := NewShardMap([]Shard{shards[2], shards[0], shards[3], shards[1]})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		h    Hash
		want int
	}{
		{Hash{}, 0}, {shards[0].End, 0}, {shards[1].Start, 1}, {shards[2].Start, 2}, {shards[2].End, 2},
		{shards[3].Start, 3}, {Hash{^uint64(0), ^uint64(0)}, 3},
	} {
		if got := m.Lookup(tc.h); got.ID != shards[tc.want].ID {
			t.Errorf("Lookup(%s) = %s, want %s", tc.h, got.ID, shards[tc.want].ID)
		}
	}
	for name, bad := range map[string][]Shard{
		"gap":     {shards[0], shards[2], shards[3]},
		"overlap": {shards[0], {ID: "x", Start: shards[0].End, End: shards[1].End}, shards[2], shards[3]},
		"short":   {shards[0], shards[1]},
		"none":    nil,
	} {
		if _, err := NewShardMap(bad); err == nil {
			t.Errorf("%s: NewShardMap accepted it", name)
		}
	}
	for _, s := range []string{"-1", "x", new(big.Int).Lsh(big.NewInt(1), 128).String()} {
		if _, err := ParseHash(s); err == nil {
			t.Errorf("ParseHash(%q) accepted", s)
		}
	}
}

func FuzzDecode(f *testing.F) {
	a := NewAggregator()
	a.Add("k1", []byte("a"))
	a.Add("k2", []byte("bc"))
	f.Add(a.Encode(nil))
	f.Add([]byte("plain"))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := Decode(b)
		if err == nil && len(recs) == 0 && !bytes.HasPrefix(b, magic[:]) {
			t.Fatal("a plain record decoded to nothing")
		}
		// Re-wrap whatever is inside with a correct MD5: must not panic.
		if len(b) > 4 {
			sum := md5.Sum(b[4:])
			_, _ = Decode(append(append(magic[:], b[4:]...), sum[:]...))
		}
	})
}

func BenchmarkAggregate(b *testing.B) {
	data := bytes.Repeat([]byte("x"), 200)
	keys := make([]string, 500)
	for i := range keys {
		keys[i] = fmt.Sprint(1000 + i%50)
	}
	a := NewAggregator()
	var buf []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		a.Reset()
		for _, k := range keys {
			if a.SizeWith(k, data) > 1<<20 {
				b.Fatal("too big")
			}
			a.Add(k, data)
		}
		buf = a.Encode(buf[:0])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(keys)), "ns/record")
}

func BenchmarkLookup(b *testing.B) {
	m, _ := NewShardMap([]Shard{{ID: "a", End: Hash{1 << 62, 0}}, {ID: "b", Start: Hash{1 << 62, 1}, End: Hash{^uint64(0), ^uint64(0)}}})
	for i := 0; i < b.N; i++ {
		m.Lookup(HashKey("public.orders:12345"))
	}
}
