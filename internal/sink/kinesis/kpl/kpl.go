// Package kpl encodes and decodes the Kinesis Producer Library's aggregated
// record format, which the Kinesis Client Library and the AWS
// de-aggregation libraries read: the magic bytes F3 89 9A C2, a protobuf
// AggregatedRecord, and the MD5 of the protobuf bytes.
//
//	AggregatedRecord { repeated string partition_key_table = 1;
//	                   repeated string explicit_hash_key_table = 2;
//	                   repeated Record records = 3; }
//	Record { required uint64 partition_key_index = 1;
//	         optional uint64 explicit_hash_key_index = 2;
//	         required bytes data = 3; repeated Tag tags = 4; }
package kpl

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Magic starts every aggregated record.
var magic = [4]byte{0xF3, 0x89, 0x9A, 0xC2}

const (
	fieldPartitionKeyTable = 1
	fieldExplicitHashTable = 2
	fieldRecords           = 3

	fieldRecordPKIndex  = 1
	fieldRecordEHKIndex = 2
	fieldRecordData     = 3
)

// overhead is the magic and the MD5 trailer.
const overhead = len(magic) + md5.Size

// Aggregator packs user records into one aggregated record. Its size is
// known after every Add without encoding, so a caller can stop before the
// Kinesis record limit. The zero value is not ready: use NewAggregator.
type Aggregator struct {
	keys    map[string]uint64
	table   []byte // encoded partition_key_table entries
	records []byte // encoded records entries
	n       int
	first   string
}

// NewAggregator returns an empty Aggregator.
func NewAggregator() *Aggregator {
	return &Aggregator{keys: map[string]uint64{}}
}

// Len is the number of user records added since the last Reset.
func (a *Aggregator) Len() int { return a.n }

// PartitionKey is the partition key of the first user record: the one to
// send the aggregate with. Route it with an explicit hash key so that it
// lands on the shard all its user records belong to.
func (a *Aggregator) PartitionKey() string { return a.first }

// Size is the size Kinesis counts for the encoded aggregate sent with
// PartitionKey: data plus partition key.
func (a *Aggregator) Size() int {
	if a.n == 0 {
		return 0
	}
	return overhead + len(a.table) + len(a.records) + len(a.first)
}

// SizeWith is what Size would be after Add(pk, data).
func (a *Aggregator) SizeWith(pk string, data []byte) int {
	first := a.first
	if a.n == 0 {
		first = pk
	}
	idx, known := a.keys[pk]
	table := 0
	if !known {
		idx = uint64(len(a.keys))
		table = stringFieldSize(fieldPartitionKeyTable, len(pk))
	}
	return overhead + len(a.table) + table + len(a.records) + recordFieldSize(idx, len(data)) + len(first)
}

// Add appends a user record.
func (a *Aggregator) Add(pk string, data []byte) {
	idx, known := a.keys[pk]
	if !known {
		idx = uint64(len(a.keys))
		a.keys[pk] = idx
		a.table = protowire.AppendTag(a.table, fieldPartitionKeyTable, protowire.BytesType)
		a.table = protowire.AppendString(a.table, pk)
	}
	if a.n == 0 {
		a.first = pk
	}
	a.n++
	a.records = protowire.AppendTag(a.records, fieldRecords, protowire.BytesType)
	a.records = protowire.AppendVarint(a.records, uint64(recordSize(idx, len(data))))
	a.records = protowire.AppendTag(a.records, fieldRecordPKIndex, protowire.VarintType)
	a.records = protowire.AppendVarint(a.records, idx)
	a.records = protowire.AppendTag(a.records, fieldRecordData, protowire.BytesType)
	a.records = protowire.AppendBytes(a.records, data)
}

// Encode appends the aggregated record to dst.
func (a *Aggregator) Encode(dst []byte) []byte {
	dst = append(dst, magic[:]...)
	start := len(dst)
	dst = append(dst, a.table...)
	dst = append(dst, a.records...)
	h := md5.New()
	h.Write(dst[start:])
	return h.Sum(dst)
}

// Reset empties the Aggregator, keeping its buffers.
func (a *Aggregator) Reset() {
	clear(a.keys)
	a.table, a.records, a.n, a.first = a.table[:0], a.records[:0], 0, ""
}

func recordSize(idx uint64, dataLen int) int {
	return 1 + protowire.SizeVarint(idx) + 1 + protowire.SizeBytes(dataLen)
}

func recordFieldSize(idx uint64, dataLen int) int {
	n := recordSize(idx, dataLen)
	return 1 + protowire.SizeBytes(n)
}

func stringFieldSize(_ protowire.Number, n int) int { return 1 + protowire.SizeBytes(n) }

// UserRecord is one record inside an aggregate.
type UserRecord struct {
	PartitionKey    string // empty for a plain (non-aggregated) record
	ExplicitHashKey string // empty when the aggregate did not set one
	Data            []byte // aliases the input
}

// Decode returns the user records of a Kinesis record. A record without
// the magic (or too short to be an aggregate) is a plain record and comes
// back whole, as the KCL treats it. An aggregate whose MD5 does not match,
// or whose protobuf is malformed, is an error.
func Decode(b []byte) ([]UserRecord, error) {
	if len(b) < overhead || !bytes.Equal(b[:len(magic)], magic[:]) {
		return []UserRecord{{Data: b}}, nil
	}
	body, sum := b[len(magic):len(b)-md5.Size], b[len(b)-md5.Size:]
	if got := md5.Sum(body); !bytes.Equal(got[:], sum) {
		return nil, errors.New("aggregated record: MD5 does not match its contents")
	}
	var keys, hashes []string
	var recs [][]byte
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return nil, fmt.Errorf("aggregated record: %w", protowire.ParseError(n))
		}
		body = body[n:]
		if typ == protowire.BytesType && num >= fieldPartitionKeyTable && num <= fieldRecords {
			v, n := protowire.ConsumeBytes(body)
			if n < 0 {
				return nil, fmt.Errorf("aggregated record field %d: %w", num, protowire.ParseError(n))
			}
			body = body[n:]
			switch num {
			case fieldPartitionKeyTable:
				keys = append(keys, string(v))
			case fieldExplicitHashTable:
				hashes = append(hashes, string(v))
			case fieldRecords:
				recs = append(recs, v)
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, body)
		if n < 0 {
			return nil, fmt.Errorf("aggregated record field %d: %w", num, protowire.ParseError(n))
		}
		body = body[n:]
	}
	out := make([]UserRecord, 0, len(recs))
	for i, r := range recs {
		u, err := decodeRecord(r, keys, hashes)
		if err != nil {
			return nil, fmt.Errorf("aggregated record, user record %d: %w", i, err)
		}
		out = append(out, u)
	}
	return out, nil
}

func decodeRecord(b []byte, keys, hashes []string) (UserRecord, error) {
	var u UserRecord
	var pk, ehk uint64
	hasPK, hasEHK, hasData := false, false, false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return u, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == fieldRecordPKIndex && typ == protowire.VarintType:
			pk, n = protowire.ConsumeVarint(b)
			hasPK = true
		case num == fieldRecordEHKIndex && typ == protowire.VarintType:
			ehk, n = protowire.ConsumeVarint(b)
			hasEHK = true
		case num == fieldRecordData && typ == protowire.BytesType:
			u.Data, n = protowire.ConsumeBytes(b)
			hasData = true
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return u, protowire.ParseError(n)
		}
		b = b[n:]
	}
	if !hasPK || !hasData {
		return u, errors.New("missing partition key index or data")
	}
	if pk >= uint64(len(keys)) {
		return u, fmt.Errorf("partition key index %d out of a table of %d", pk, len(keys))
	}
	u.PartitionKey = keys[pk]
	if hasEHK {
		if ehk >= uint64(len(hashes)) {
			return u, fmt.Errorf("explicit hash key index %d out of a table of %d", ehk, len(hashes))
		}
		u.ExplicitHashKey = hashes[ehk]
	}
	return u, nil
}
