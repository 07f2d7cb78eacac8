package kpl

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkAggregate fills an aggregate as the sink does, checking the
// size before each of 500 records of 200 bytes, then encodes it. The keys
// are decimal xids, as the default partition key makes them: each
// record its own (single-row transactions), or ten records a key.
func BenchmarkAggregate(b *testing.B) {
	for _, perKey := range []int{1, 10} {
		b.Run(fmt.Sprintf("perKey=%d", perKey), func(b *testing.B) { benchmarkAggregate(b, perKey) })
	}
}

func benchmarkAggregate(b *testing.B, perKey int) {
	const perAggregate = 500
	rng := rand.New(rand.NewPCG(1, 1))
	data := make([][]byte, perAggregate)
	keys := make([]string, perAggregate)
	for i := range data {
		data[i] = make([]byte, 190+rng.IntN(21))
		for j := range data[i] {
			data[i][j] = byte(rng.Uint32())
		}
		keys[i] = fmt.Sprint(1_000_000 + i/perKey)
	}
	var a Aggregator
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		a.Reset()
		for i := range data {
			if a.SizeWith(keys[i], data[i]) > 1<<20 {
				b.Fatal("over 1 MiB")
			}
			a.Add(keys[i], data[i])
		}
		buf = a.Encode(buf[:0])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perAggregate), "ns/record")
	b.SetBytes(int64(len(buf)))
}

// BenchmarkAggregateAdd is BenchmarkAggregate without the encoding, whose
// MD5 of the whole aggregate outweighs the rest: the per-record work of
// the size check, the key table and the framing.
func BenchmarkAggregateAdd(b *testing.B) {
	for _, perKey := range []int{1, 1000} {
		b.Run(fmt.Sprintf("perKey=%d", perKey), func(b *testing.B) {
			const perAggregate = 500
			keys := make([]string, 1<<16) // distinct over many aggregates
			for i := range keys {
				keys[i] = fmt.Sprint(7_000_000 + i/perKey)
			}
			data := make([]byte, 200)
			var a Aggregator
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%perAggregate == 0 {
					a.Reset()
				}
				pk := keys[i%len(keys)]
				if a.SizeWith(pk, data) > 1<<20 {
					b.Fatal("over 1 MiB")
				}
				a.Add(pk, data)
				i++
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	var a Aggregator
	for i := range 500 {
		a.Add(fmt.Sprint(1_000_000+i/10), make([]byte, 200))
	}
	enc := a.Encode(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookup predicts the shard of a partition key among 64 shards:
// the MD5 and the binary search, as the sink does per record.
func BenchmarkLookup(b *testing.B) {
	m, err := ParseShardMap(evenSplit(64))
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("public.orders:", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Lookup(HashKey(keys[i%len(keys)]))
		i++
	}
}
