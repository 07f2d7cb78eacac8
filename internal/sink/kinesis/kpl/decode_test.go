package kpl

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestDecodePlain(t *testing.T) {
	magicOnly := []byte{0xF3, 0x89, 0x9A, 0xC2}
	for name, b := range map[string][]byte{
		"CSV record":  []byte("0,CDC,1,public.blue,Update,123456"),
		"empty":       {},
		"magic only":  magicOnly,
		"short":       append(magicOnly, make([]byte, 15)...),
		"no protobuf": aggregate(nil), // magic + MD5 of nothing: the KCL reads it as plain
		"other magic": append([]byte{0xF3, 0x89, 0x9A, 0xC3}, aggregate([]byte{0x0a, 0x00})[4:]...),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !bytes.Equal(got[0].Data, b) || got[0].PartitionKey != "" || got[0].ExplicitHashKey != "" {
				t.Fatalf("got %+v, want the input as one plain record", got)
			}
		})
	}
}

func TestDecodeAcceptsWhatProtobufAllows(t *testing.T) {
	tests := []struct {
		name  string
		proto []byte
		want  []UserRecord
	}{
		{
			name:  "no records",
			proto: []byte{0x0a, 0x01, 'k'},
			want:  []UserRecord{},
		},
		{
			name:  "records before the tables",
			proto: []byte{0x1a, 0x07, 0x08, 0x01, 0x10, 0x00, 0x1a, 0x01, 'x', 0x12, 0x01, '5', 0x0a, 0x01, 'a', 0x0a, 0x01, 'b'},
			want:  []UserRecord{{PartitionKey: "b", ExplicitHashKey: "5", Data: []byte("x")}},
		},
		{
			name: "tags, unknown fields and wrong wire types are skipped",
			proto: []byte{
				0x0a, 0x01, 'k',
				0x20, 0x07, // field 4, varint: unknown in AggregatedRecord
				0x08, 0x05, // field 1 as a varint: not the table's wire type
				0x1a, 0x14,
				0x08, 0x00, 0x1a, 0x01, 'x',
				0x22, 0x06, 0x0a, 0x01, 't', 0x12, 0x01, 'v', // tags {key "t", value "v"}
				0x2d, 0x01, 0x02, 0x03, 0x04, // field 5, fixed32
				0x12, 0x00, // field 2 as bytes: not an index
			},
			want: []UserRecord{{PartitionKey: "k", Data: []byte("x")}},
		},
		{
			name:  "the last of repeated scalar fields wins",
			proto: []byte{0x0a, 0x01, 'a', 0x0a, 0x01, 'b', 0x1a, 0x09, 0x08, 0x00, 0x1a, 0x01, 'x', 0x08, 0x01, 0x1a, 0x00},
			want:  []UserRecord{{PartitionKey: "b", Data: []byte{}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(aggregate(tc.proto))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d records %+v, want %+v", len(got), got, tc.want)
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.PartitionKey != w.PartitionKey || g.ExplicitHashKey != w.ExplicitHashKey || !bytes.Equal(g.Data, w.Data) {
					t.Fatalf("record %d: %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestDecodeRejectsCorruption(t *testing.T) {
	a := NewAggregator()
	a.Add("k1", []byte("hello"))
	a.AddWithHashKey("k2", "42", []byte("world"))
	good := a.Encode(nil)
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name string
		in   []byte
		is   error
		msg  string
	}{
		{"flipped bit in the protobuf", flip(10), ErrChecksum, "MD5"},
		{"flipped bit in the MD5", flip(len(good) - 1), ErrChecksum, "MD5"},
		{"truncated by one byte", good[:len(good)-1], ErrChecksum, "MD5"},
		{"truncated inside the protobuf", good[:len(good)-md5Len-3], ErrChecksum, "MD5"},
		{"extra byte", append(bytes.Clone(good), 0), ErrChecksum, "MD5"},
		// From here on the MD5 is right and the protobuf is wrong.
		{"record cut short", aggregate([]byte{0x1a, 0x05, 0x08}), ErrMalformed, "field 3"},
		{"string cut short", aggregate([]byte{0x0a, 0x05, 'k'}), ErrMalformed, "field 1"},
		{"varint cut short", aggregate([]byte{0x0a, 0x01, 'k', 0x1a, 0x02, 0x08, 0x80}), ErrMalformed, "user record 0"},
		{"varint over 64 bits", aggregate(append([]byte{0x0a, 0x01, 'k', 0x1a, 0x0b, 0x08}, bytes.Repeat([]byte{0xff}, 10)...)), ErrMalformed, "user record 0"},
		{"field number 0", aggregate([]byte{0x02, 0x00}), ErrMalformed, "invalid field number"},
		{"end group without start", aggregate([]byte{0x1c}), ErrMalformed, ""},
		{"no partition key index", aggregate([]byte{0x0a, 0x01, 'k', 0x1a, 0x03, 0x1a, 0x01, 'x'}), ErrMalformed, "no partition_key_index"},
		{"no data", aggregate([]byte{0x0a, 0x01, 'k', 0x1a, 0x02, 0x08, 0x00}), ErrMalformed, "no data"},
		{"partition key index past the table", aggregate([]byte{0x0a, 0x01, 'k', 0x1a, 0x05, 0x08, 0x01, 0x1a, 0x01, 'x'}), ErrMalformed, "partition_key_index 1 is past the partition key table of 1"},
		{"explicit hash key index past the table", aggregate([]byte{0x0a, 0x01, 'k', 0x12, 0x01, '1', 0x1a, 0x07, 0x08, 0x00, 0x10, 0x01, 0x1a, 0x01, 'x'}), ErrMalformed, "explicit_hash_key_index 1 is past the explicit hash key table of 1"},
		{"second record bad", aggregate([]byte{0x0a, 0x01, 'k', 0x1a, 0x04, 0x08, 0x00, 0x1a, 0x00, 0x1a, 0x02, 0x08, 0x00}), ErrMalformed, "user record 1: no data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.in)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Decode = %+v, %v; want an error wrapping %q and saying %q", got, err, tc.is, tc.msg)
			}
			if got != nil {
				t.Fatalf("records %+v came with the error", got)
			}
		})
	}
}

const md5Len = 16
