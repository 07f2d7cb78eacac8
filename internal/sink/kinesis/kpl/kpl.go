// Package kpl encodes and decodes the Kinesis Producer Library's aggregated
// record format, which the Kinesis Client Library and the AWS
// de-aggregation libraries read, and predicts the shard of a partition key.
// It does no I/O.
//
// An aggregated record is the magic bytes F3 89 9A C2, a protobuf
// AggregatedRecord, and the 16-byte MD5 of the protobuf bytes:
//
//	AggregatedRecord { repeated string partition_key_table = 1;
//	                   repeated string explicit_hash_key_table = 2;
//	                   repeated Record records = 3; }
//	Record { required uint64 partition_key_index = 1;
//	         optional uint64 explicit_hash_key_index = 2;
//	         required bytes data = 3; repeated Tag tags = 4; }
//	Tag    { required string key = 1; optional string value = 2; }
//
// The KCL drops every user record of an aggregate as soon as one of them
// hashes (by its explicit hash key, or else the MD5 of its partition key)
// outside the range of the shard the aggregate landed on. So an aggregate
// must hold only user records of one shard, and be sent with an explicit
// hash key inside that shard's range: see ShardMap.
package kpl

import (
	"crypto/md5"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

var magic = [4]byte{0xF3, 0x89, 0x9A, 0xC2}

const (
	fieldPartitionKeyTable    = 1
	fieldExplicitHashKeyTable = 2
	fieldRecords              = 3

	fieldRecordPartitionKeyIndex    = 1
	fieldRecordExplicitHashKeyIndex = 2
	fieldRecordData                 = 3
)

// Every field number here is below 16, so every tag is one byte; the size
// arithmetic below relies on it.
const tagSize = 1

// overhead is what an aggregate adds around its protobuf bytes.
const overhead = len(magic) + md5.Size

// Aggregator packs user records into one aggregated record and knows the
// size of the result after every Add without encoding anything, so that a
// caller can stop before Kinesis' 1 MiB record limit.
//
// The zero value is an empty Aggregator ready to use. An Aggregator is not
// safe for concurrent use.
type Aggregator struct {
	pkIndex  keyIndex
	ehkIndex map[string]uint64
	pkTable  []byte // encoded partition_key_table fields, in index order
	ehkTable []byte // encoded explicit_hash_key_table fields, in index order
	records  []byte // encoded records fields, in Add order
	n        int
	first    string
	// last is the latest partition_key_table lookup. A caller checks the
	// size (SizeWith) before each Add of the same key, and the default
	// partition key, the xid, repeats one key for a whole transaction:
	// remembering the answer spares those lookups, and looks a key
	// that is not in the table yet up once instead of twice.
	last keyLookup
}

// keyLookup is a partition key and its partition_key_table index; known is
// false when it is not in the table yet and idx the index it would get.
type keyLookup struct {
	pk         string
	idx        uint64
	known, set bool
}

// NewAggregator returns an empty Aggregator; the zero value works as well.
func NewAggregator() *Aggregator { return &Aggregator{} }

// Len returns the number of user records added since the last Reset.
func (a *Aggregator) Len() int { return a.n }

// PartitionKey returns the partition key of the first user record added
// since the last Reset, or "" when there is none. It is the partition key
// to send the aggregate with; the caller also sets the PutRecords
// ExplicitHashKey (see Hash.String and ShardMap) so that the aggregate
// lands on the shard every one of its user records hashes to, whatever
// this key hashes to.
func (a *Aggregator) PartitionKey() string { return a.first }

// Size returns what Kinesis counts against its record limit for the
// encoded aggregate sent with PartitionKey: len(Encode(nil)) plus
// len(PartitionKey()). It is 0 when the Aggregator is empty.
func (a *Aggregator) Size() int {
	if a.n == 0 {
		return 0
	}
	return a.protoSize() + overhead + len(a.first)
}

// SizeWith returns what Size would be after Add(pk, data), without adding.
func (a *Aggregator) SizeWith(pk string, data []byte) int {
	return a.SizeWithHashKey(pk, "", data)
}

// SizeWithHashKey returns what Size would be after
// AddWithHashKey(pk, ehk, data), without adding. It takes constant time.
func (a *Aggregator) SizeWithHashKey(pk, ehk string, data []byte) int {
	return a.sizeWith(pk, ehk, len(data))
}

// SizeWithLen returns what Size would be after Add of a record of n bytes
// of data with key pk, without adding: the framing of a record depends on
// its length (protobuf varints), not only on its key.
func (a *Aggregator) SizeWithLen(pk string, n int) int { return a.sizeWith(pk, "", n) }

func (a *Aggregator) sizeWith(pk, ehk string, n int) int {
	size := a.protoSize() + overhead
	if a.n == 0 {
		size += len(pk)
	} else {
		size += len(a.first)
	}
	pkIdx, known := a.lookup(pk)
	if !known {
		size += tagSize + protowire.SizeBytes(len(pk))
	}
	ehkIdx, hasEHK := uint64(0), ehk != ""
	if hasEHK {
		if ehkIdx, known = a.ehkIndex[ehk]; !known {
			ehkIdx = uint64(len(a.ehkIndex))
			size += tagSize + protowire.SizeBytes(len(ehk))
		}
	}
	return size + tagSize + protowire.SizeBytes(recordSize(pkIdx, ehkIdx, hasEHK, n))
}

// Add appends a user record without an explicit hash key: readers route
// and check it by the MD5 of pk. It never fails; checking the size first
// (SizeWith) is the caller's business.
func (a *Aggregator) Add(pk string, data []byte) { a.AddWithHashKey(pk, "", data) }

// AddWithHashKey appends a user record. A non-empty ehk is recorded as the
// user record's explicit hash key, which readers then use instead of the
// MD5 of pk; it must be a decimal number from 0 to 2^128-1 (Hash.String),
// which is not checked here. An empty ehk means none, as in Add.
func (a *Aggregator) AddWithHashKey(pk, ehk string, data []byte) {
	pkIdx, known := a.lookup(pk)
	if !known {
		a.pkIndex.add(pk)
		a.last.known = true
		a.pkTable = protowire.AppendTag(a.pkTable, fieldPartitionKeyTable, protowire.BytesType)
		a.pkTable = protowire.AppendString(a.pkTable, pk)
	}
	ehkIdx, hasEHK := uint64(0), ehk != ""
	if hasEHK {
		if ehkIdx, known = a.ehkIndex[ehk]; !known {
			if a.ehkIndex == nil {
				a.ehkIndex = map[string]uint64{}
			}
			ehkIdx = uint64(len(a.ehkIndex))
			a.ehkIndex[ehk] = ehkIdx
			a.ehkTable = protowire.AppendTag(a.ehkTable, fieldExplicitHashKeyTable, protowire.BytesType)
			a.ehkTable = protowire.AppendString(a.ehkTable, ehk)
		}
	}
	if a.n == 0 {
		a.first = pk
	}
	a.n++
	r := protowire.AppendTag(a.records, fieldRecords, protowire.BytesType)
	r = protowire.AppendVarint(r, uint64(recordSize(pkIdx, ehkIdx, hasEHK, len(data))))
	r = protowire.AppendTag(r, fieldRecordPartitionKeyIndex, protowire.VarintType)
	r = protowire.AppendVarint(r, pkIdx)
	if hasEHK {
		r = protowire.AppendTag(r, fieldRecordExplicitHashKeyIndex, protowire.VarintType)
		r = protowire.AppendVarint(r, ehkIdx)
	}
	r = protowire.AppendTag(r, fieldRecordData, protowire.BytesType)
	a.records = protowire.AppendBytes(r, data)
}

// Encode appends the aggregated record to dst and returns the extended
// slice; the Aggregator is unchanged. The tables come first, then the
// records in Add order, as the KPL writes them. An empty Aggregator
// encodes to 20 bytes that readers take for a plain record, not an
// aggregate: do not send it.
func (a *Aggregator) Encode(dst []byte) []byte {
	// One allocation for an aggregate of up to 1 MiB, not one per append.
	dst = slices.Grow(dst, overhead+a.protoSize())
	dst = append(dst, magic[:]...)
	start := len(dst)
	dst = append(dst, a.pkTable...)
	dst = append(dst, a.ehkTable...)
	dst = append(dst, a.records...)
	sum := md5.Sum(dst[start:])
	return append(dst, sum[:]...)
}

// Reset empties the Aggregator and keeps its buffers and indexes for reuse.
func (a *Aggregator) Reset() {
	a.pkIndex.reset()
	clear(a.ehkIndex)
	a.pkTable, a.ehkTable, a.records = a.pkTable[:0], a.ehkTable[:0], a.records[:0]
	a.n, a.first, a.last = 0, "", keyLookup{}
}

// lookup returns pk's partition_key_table index, or, when pk is not in the
// table, the index Add would give it. Only Add and Reset change the table,
// and both update a.last.
func (a *Aggregator) lookup(pk string) (idx uint64, known bool) {
	if a.last.set && a.last.pk == pk {
		return a.last.idx, a.last.known
	}
	idx, known = a.pkIndex.find(pk)
	a.last = keyLookup{pk: pk, idx: idx, known: known, set: true}
	return idx, known
}

func (a *Aggregator) protoSize() int { return len(a.pkTable) + len(a.ehkTable) + len(a.records) }

// recordSize is the size of a Record message's contents, which its
// length prefix (and so its own size as a field) depends on.
func recordSize(pkIdx, ehkIdx uint64, hasEHK bool, dataLen int) int {
	n := tagSize + protowire.SizeVarint(pkIdx) + tagSize + protowire.SizeBytes(dataLen)
	if hasEHK {
		n += tagSize + protowire.SizeVarint(ehkIdx)
	}
	return n
}
