package kpl

import (
	"bytes"
	"testing"
)

func FuzzDecode(f *testing.F) {
	a := NewAggregator()
	a.Add("k1", []byte("a"))
	a.AddWithHashKey("k2", "170141183460469231731687303715884105728", []byte("bc"))
	a.Add("k1", nil)
	f.Add(a.Encode(nil))
	f.Add([]byte("0,CDC,1,public.blue,Update,123456"))
	f.Add(aggregate([]byte{0x1a, 0x07, 0x08, 0x01, 0x10, 0x00, 0x1a, 0x01, 'x', 0x12, 0x01, '5', 0x0a, 0x01, 'a', 0x0a, 0x01, 'b'}))
	f.Add(aggregate([]byte{0x0a, 0x01, 'k', 0x1a, 0x0a, 0x08, 0x00, 0x1a, 0x00, 0x22, 0x04, 0x0a, 0x02, 't', 'v'}))
	f.Add(aggregate([]byte{0x0b, 0x0c}))
	f.Fuzz(func(t *testing.T, b []byte) {
		check(t, b)
		// Random bytes almost never carry a matching MD5: wrap them in one
		// too, so that the protobuf parser is what gets explored.
		if len(b) > 0 {
			check(t, aggregate(b))
		}
	})
}

// check holds Decode to its contract on any input: a plain record comes
// back whole, and an aggregate that decodes survives a re-encoding.
func check(t *testing.T, b []byte) {
	recs, err := Decode(b)
	aggregated := len(b) > overhead && bytes.HasPrefix(b, magic[:])
	if !aggregated {
		if err != nil || len(recs) != 1 || !bytes.Equal(recs[0].Data, b) || recs[0].PartitionKey != "" {
			t.Fatalf("plain record % x: %+v, %v", b, recs, err)
		}
		return
	}
	if err != nil {
		if recs != nil {
			t.Fatalf("records with an error: %+v, %v", recs, err)
		}
		return
	}
	var a Aggregator
	for _, r := range recs {
		a.AddWithHashKey(r.PartitionKey, r.ExplicitHashKey, r.Data)
	}
	if len(recs) == 0 {
		return // an aggregate of nothing re-encodes to a plain record
	}
	enc := a.Encode(nil)
	if a.Size() != len(enc)+len(a.PartitionKey()) {
		t.Fatalf("Size %d, encoded %d + key %d", a.Size(), len(enc), len(a.PartitionKey()))
	}
	again, err := Decode(enc)
	if err != nil || len(again) != len(recs) {
		t.Fatalf("re-encoded %d records decode to %d: %v", len(recs), len(again), err)
	}
	for i := range recs {
		if again[i].PartitionKey != recs[i].PartitionKey || again[i].ExplicitHashKey != recs[i].ExplicitHashKey || !bytes.Equal(again[i].Data, recs[i].Data) {
			t.Fatalf("record %d re-encoded: %+v, want %+v", i, again[i], recs[i])
		}
	}
}
