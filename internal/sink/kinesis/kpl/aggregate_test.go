package kpl

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// add is one call to the Aggregator: Add when ehk is empty.
type add struct {
	pk, ehk string
	data    []byte
}

func fill(a *Aggregator, adds []add) {
	for _, r := range adds {
		if r.ehk == "" {
			a.Add(r.pk, r.data)
		} else {
			a.AddWithHashKey(r.pk, r.ehk, r.data)
		}
	}
}

// aggregate wraps protobuf bytes as the format says: magic, bytes, MD5.
func aggregate(proto []byte) []byte {
	sum := md5.Sum(proto)
	out := append([]byte{0xF3, 0x89, 0x9A, 0xC2}, proto...)
	return append(out, sum[:]...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// The expected bytes are written out from the format, field by field, and
// not produced by any encoder: tag bytes are (field number << 3) | wire
// type, 0x0a = 1/bytes, 0x12 = 2/bytes, 0x1a = 3/bytes, 0x08 = 1/varint,
// 0x10 = 2/varint; then a varint length or value.
func TestEncodeMatchesHandBuiltBytes(t *testing.T) {
	const ehk = "170141183460469231731687303715884105728" // 2^127, 39 digits
	data200 := bytes.Repeat([]byte{0xff}, 200)
	var keys130 []add
	var table130 []byte
	for i := range 130 {
		k := fmt.Sprintf("k%03d", i)
		keys130 = append(keys130, add{pk: k, data: nil})
		table130 = append(table130, 0x0a, 0x04, k[0], k[1], k[2], k[3])
	}
	tests := []struct {
		name  string
		adds  []add
		pk    string
		proto []byte
	}{
		{
			name: "one record",
			adds: []add{{pk: "1234", data: []byte("0,CDC,1")}},
			pk:   "1234",
			proto: cat(
				[]byte{0x0a, 0x04, '1', '2', '3', '4'},
				[]byte{0x1a, 0x0b, 0x08, 0x00, 0x1a, 0x07}, []byte("0,CDC,1"),
			),
		},
		{
			name: "repeated keys share a table entry",
			adds: []add{{pk: "k1", data: []byte("a")}, {pk: "k2", data: []byte("bc")}, {pk: "k1", data: []byte("d")}},
			pk:   "k1",
			proto: []byte{
				0x0a, 0x02, 'k', '1', // partition_key_table[0]
				0x0a, 0x02, 'k', '2', // partition_key_table[1]
				0x1a, 0x05, 0x08, 0x00, 0x1a, 0x01, 'a', // {pk 0, "a"}
				0x1a, 0x06, 0x08, 0x01, 0x1a, 0x02, 'b', 'c', // {pk 1, "bc"}
				0x1a, 0x05, 0x08, 0x00, 0x1a, 0x01, 'd', // {pk 0, "d"}
			},
		},
		{
			name: "explicit hash keys and empty data",
			adds: []add{
				{pk: "k1", data: []byte("a")},
				{pk: "k2", ehk: ehk, data: []byte("bc")},
				{pk: "k1", ehk: ehk, data: []byte("d")},
				{pk: "k1", ehk: "0", data: []byte{}},
			},
			pk: "k1",
			proto: cat(
				[]byte{0x0a, 0x02, 'k', '1', 0x0a, 0x02, 'k', '2'},
				[]byte{0x12, 39}, []byte(ehk), // explicit_hash_key_table[0]
				[]byte{0x12, 0x01, '0'}, // explicit_hash_key_table[1]
				[]byte{0x1a, 0x05, 0x08, 0x00, 0x1a, 0x01, 'a'},
				[]byte{0x1a, 0x08, 0x08, 0x01, 0x10, 0x00, 0x1a, 0x02, 'b', 'c'},
				[]byte{0x1a, 0x07, 0x08, 0x00, 0x10, 0x00, 0x1a, 0x01, 'd'},
				[]byte{0x1a, 0x06, 0x08, 0x00, 0x10, 0x01, 0x1a, 0x00},
			),
		},
		{
			name: "two-byte lengths: 200 bytes of data in a 205-byte record",
			adds: []add{{pk: "Zoë", data: data200}},
			pk:   "Zoë",
			proto: cat(
				[]byte{0x0a, 0x04, 'Z', 'o', 0xc3, 0xab}, // UTF-8 bytes, not runes
				[]byte{0x1a, 0xcd, 0x01, 0x08, 0x00, 0x1a, 0xc8, 0x01}, data200,
			),
		},
		{
			name: "two-byte index: the 130th key",
			adds: append(keys130, add{pk: "k129", data: []byte("x")}),
			pk:   "k000",
			proto: cat(table130, records130(),
				[]byte{0x1a, 0x06, 0x08, 0x81, 0x01, 0x1a, 0x01, 'x'}, // index 129 = 0x81 0x01
			),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := aggregate(tc.proto)
			a := NewAggregator()
			fill(a, tc.adds)
			if got := a.Encode(nil); !bytes.Equal(got, want) {
				t.Fatalf("Encode\n got  % x\n want % x", got, want)
			}
			if got := a.Encode([]byte("prefix")); !bytes.Equal(got, append([]byte("prefix"), want...)) {
				t.Fatalf("Encode does not append to dst")
			}
			if a.Len() != len(tc.adds) || a.PartitionKey() != tc.pk || a.Size() != len(want)+len(tc.pk) {
				t.Fatalf("Len %d PartitionKey %q Size %d, want %d %q %d",
					a.Len(), a.PartitionKey(), a.Size(), len(tc.adds), tc.pk, len(want)+len(tc.pk))
			}
			var zero Aggregator // the zero value works too
			fill(&zero, tc.adds)
			if !bytes.Equal(zero.Encode(nil), want) {
				t.Fatal("the zero Aggregator encodes differently")
			}
		})
	}
}

// records130 is {pk i, ""} for i < 130: index 127 is the last one-byte varint.
func records130() []byte {
	var b []byte
	for i := range 130 {
		if i < 128 {
			b = append(b, 0x1a, 0x04, 0x08, byte(i), 0x1a, 0x00)
		} else {
			b = append(b, 0x1a, 0x05, 0x08, byte(i)|0x80, 0x01, 0x1a, 0x00)
		}
	}
	return b
}

func TestEmptyAggregator(t *testing.T) {
	a := NewAggregator()
	if a.Len() != 0 || a.Size() != 0 || a.PartitionKey() != "" {
		t.Fatalf("empty: Len %d Size %d PartitionKey %q", a.Len(), a.Size(), a.PartitionKey())
	}
	if got, want := a.Encode(nil), aggregate(nil); !bytes.Equal(got, want) {
		t.Fatalf("empty Encode % x, want % x", got, want)
	}
}

// randomAdds draws records whose sizes cross the varint boundaries (127,
// 16383 bytes; key indexes past 127) and keys that repeat or not.
func randomAdds(rng *rand.Rand, n int) []add {
	lens := []int{0, 1, 126, 127, 128, 200, 16382, 16383, 16384, 70000}
	pool := []string{"", "1", "public.orders:A-7", "Zoë", "ключ", "鍵", "\x00\xff", strings.Repeat("p", 256)}
	ehks := []string{"", "", "0", "340282366920938463463374607431768211455", "170141183460469231731687303715884105728"}
	adds := make([]add, n)
	for i := range adds {
		pk := pool[rng.IntN(len(pool))]
		if rng.IntN(2) == 0 {
			pk = fmt.Sprint(rng.IntN(400))
		}
		data := make([]byte, lens[rng.IntN(len(lens))])
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		adds[i] = add{pk: pk, ehk: ehks[rng.IntN(len(ehks))], data: data}
	}
	return adds
}

// SizeWith and SizeWithHashKey must predict Size exactly, and Size must be
// what Kinesis counts: the encoded bytes plus the partition key.
func TestSizeAccounting(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	a := NewAggregator()
	for round := range 40 {
		a.Reset()
		for i, r := range randomAdds(rng, 1+rng.IntN(600)) {
			var predicted int
			if r.ehk == "" {
				predicted = a.SizeWith(r.pk, r.data)
			} else {
				predicted = a.SizeWithHashKey(r.pk, r.ehk, r.data)
			}
			fill(a, []add{r})
			if a.Size() != predicted {
				t.Fatalf("round %d, record %d: predicted size %d, Size %d", round, i, predicted, a.Size())
			}
			if i%50 == 0 || rng.IntN(20) == 0 {
				if enc := a.Encode(nil); a.Size() != len(enc)+len(a.PartitionKey()) {
					t.Fatalf("round %d, record %d: Size %d, encoded %d + key %d", round, i, a.Size(), len(enc), len(a.PartitionKey()))
				}
			}
		}
		if enc := a.Encode(nil); a.Size() != len(enc)+len(a.PartitionKey()) {
			t.Fatalf("round %d: Size %d, encoded %d + key %d", round, a.Size(), len(enc), len(a.PartitionKey()))
		}
	}
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	tests := []struct {
		name string
		adds []add
	}{
		{"one record", []add{{pk: "1", data: []byte("x")}}},
		{"empty data", []add{{pk: "1", data: nil}, {pk: "1", data: []byte{}}}},
		{"binary data", []add{{pk: "b", data: binary}, {pk: "b", data: append([]byte{0xF3, 0x89, 0x9A, 0xC2}, binary...)}}},
		{"non-ASCII keys", []add{{pk: "Zoë", data: []byte("1")}, {pk: "ключ", data: []byte("2")}, {pk: "鍵🔑", data: []byte("3")}}},
		{"unique keys", func() (a []add) {
			for i := range 300 {
				a = append(a, add{pk: fmt.Sprint(i), data: []byte(fmt.Sprint("v", i))})
			}
			return
		}()},
		{"explicit hash keys", []add{{pk: "a", ehk: "1", data: []byte("x")}, {pk: "a", data: []byte("y")}, {pk: "b", ehk: "1", data: []byte("z")}}},
		{"random", randomAdds(rng, 2000)},
	}
	a := NewAggregator()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a.Reset() // reused across cases: Reset must forget everything
			fill(a, tc.adds)
			got, err := Decode(a.Encode(nil))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.adds) {
				t.Fatalf("decoded %d records, want %d", len(got), len(tc.adds))
			}
			for i, w := range tc.adds {
				if g := got[i]; g.PartitionKey != w.pk || g.ExplicitHashKey != w.ehk || !bytes.Equal(g.Data, w.data) {
					t.Fatalf("record %d: %q %q %x, want %q %q %x", i, g.PartitionKey, g.ExplicitHashKey, g.Data, w.pk, w.ehk, w.data)
				}
			}
		})
	}
}

// A reused Aggregator encodes as a fresh one does, and once its buffers
// have grown, a fill-encode-reset cycle allocates nothing.
func TestResetReusesBuffers(t *testing.T) {
	adds := randomAdds(rand.New(rand.NewPCG(3, 4)), 300)
	fresh := NewAggregator()
	fill(fresh, adds)
	want := fresh.Encode(nil)

	a := NewAggregator()
	fill(a, randomAdds(rand.New(rand.NewPCG(5, 6)), 500))
	a.Reset()
	fill(a, adds)
	if !bytes.Equal(a.Encode(nil), want) {
		t.Fatal("after Reset, Encode differs from a fresh Aggregator's")
	}
	buf := make([]byte, 0, len(want))
	allocs := testing.AllocsPerRun(20, func() {
		a.Reset()
		fill(a, adds)
		buf = a.Encode(buf[:0])
	})
	if allocs != 0 {
		t.Errorf("a reused Aggregator allocates %.1f times per aggregate, want 0", allocs)
	}
}

// SizeWithLen is SizeWith of that much data, for the lengths where the
// protobuf framing grows.
func TestSizeWithLen(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, 1 << 20, 2097151, 2097152} {
		for _, prefill := range []bool{false, true} {
			a := NewAggregator()
			if prefill {
				a.Add("other", []byte("x"))
			}
			if got, want := a.SizeWithLen("k", n), a.SizeWith("k", make([]byte, n)); got != want {
				t.Errorf("n=%d, prefilled %t: SizeWithLen = %d, SizeWith = %d", n, prefill, got, want)
			}
		}
	}
}

// Size questions about other keys, asked between the adds, change nothing:
// the aggregate encodes as one built by Add alone, and SizeWith still
// predicts Size.
func TestSizeQuestionsDoNotChangeTheAggregate(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	plain, asked := NewAggregator(), NewAggregator()
	for round := range 20 {
		plain.Reset()
		asked.Reset()
		adds := randomAdds(rng, 1+rng.IntN(300))
		for i, r := range adds {
			other := adds[rng.IntN(len(adds))]
			asked.SizeWith(other.pk, other.data)
			if rng.IntN(2) == 0 {
				asked.SizeWithLen(fmt.Sprint("new", i), 10)
			}
			var predicted int
			if r.ehk == "" {
				predicted = asked.SizeWith(r.pk, r.data)
			} else {
				predicted = asked.SizeWithHashKey(r.pk, r.ehk, r.data)
			}
			if rng.IntN(3) == 0 {
				asked.SizeWith(other.pk, other.data) // between SizeWith and Add
			}
			fill(asked, []add{r})
			fill(plain, []add{r})
			if asked.Size() != predicted {
				t.Fatalf("round %d, record %d: predicted size %d, Size %d", round, i, predicted, asked.Size())
			}
		}
		if !bytes.Equal(asked.Encode(nil), plain.Encode(nil)) {
			t.Fatalf("round %d: size questions changed the encoded aggregate", round)
		}
	}
}
