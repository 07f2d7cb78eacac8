package kpl

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrChecksum is returned, wrapped, by Decode for a record that starts
// with the aggregate magic but whose trailing MD5 does not match its
// protobuf bytes: it was corrupted, or is not an aggregate after all.
var ErrChecksum = errors.New("MD5 does not match the contents")

// ErrMalformed is returned, wrapped, by Decode for an aggregate whose MD5
// matches but whose protobuf cannot be read as an AggregatedRecord.
var ErrMalformed = errors.New("malformed protobuf")

// UserRecord is one user record of a Kinesis record.
type UserRecord struct {
	PartitionKey    string // "" for a plain (non-aggregated) record: use the Kinesis record's
	ExplicitHashKey string // "" when the user record has none
	Data            []byte // aliases the input of Decode
}

// Decode returns the user records of a Kinesis record's data, in order.
//
// Data that does not start with the magic, or is too short to hold more
// than the magic and the MD5, is a plain record and comes back as the one
// user record, with no partition key, as the KCL treats it. An aggregate
// whose MD5 does not match is an error wrapping ErrChecksum (where the KCL
// would silently take it for a plain record); one whose protobuf is
// malformed, lacks a required field, or points past a key table is an
// error wrapping ErrMalformed. Tags and unknown fields are skipped. Decode
// never panics, and allocates in proportion to len(b).
func Decode(b []byte) ([]UserRecord, error) {
	if !aggregated(b) {
		return []UserRecord{{Data: b}}, nil
	}
	body, sum := b[len(magic):len(b)-md5.Size], b[len(b)-md5.Size:]
	if got := md5.Sum(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("aggregated record: %w (MD5 % x, trailer % x)", ErrChecksum, got, sum)
	}
	// The records may come before the tables they index (protobuf allows
	// any field order), so read the tables first and the records after.
	var pks, ehks []string
	nrec := 0
	err := eachField(body, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fieldPartitionKeyTable:
			pks = append(pks, string(v))
		case fieldExplicitHashKeyTable:
			ehks = append(ehks, string(v))
		case fieldRecords:
			nrec++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("aggregated record: %w: %w", ErrMalformed, err)
	}
	out := make([]UserRecord, 0, nrec)
	err = eachField(body, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != fieldRecords || typ != protowire.BytesType {
			return nil
		}
		u, err := decodeRecord(v, pks, ehks)
		if err != nil {
			return fmt.Errorf("user record %d: %w", len(out), err)
		}
		out = append(out, u)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("aggregated record: %w: %w", ErrMalformed, err)
	}
	return out, nil
}

// Hash is the hash key that places u: its explicit hash key if it has
// one, else the MD5 of its partition key. A plain record (no partition key
// of its own) has none: Kinesis placed it, so it is in its shard.
func (u UserRecord) Hash() (Hash, error) {
	if u.ExplicitHashKey != "" {
		return ParseHash(u.ExplicitHashKey)
	}
	return HashKey(u.PartitionKey), nil
}

// DecodeInShard is Decode for a record read from shard sh, filtered as the
// KCL filters: an aggregate holding a user record whose Hash is outside
// sh's range (or unreadable) yields no user records at all, and dropped
// says how many it held. The KCL drops the whole aggregate, not only the
// stray user record, so a reader that kept the others would see records
// that KCL consumers never get. Plain records are never dropped.
func DecodeInShard(b []byte, sh Shard) (users []UserRecord, dropped int, err error) {
	users, err = Decode(b)
	if err != nil || !aggregated(b) {
		return users, 0, err
	}
	for _, u := range users {
		if h, err := u.Hash(); err != nil || !sh.Covers(h) {
			return nil, len(users), nil
		}
	}
	return users, 0, nil
}

// aggregated reports whether b is read as an aggregate rather than as a
// plain record.
func aggregated(b []byte) bool { return len(b) > overhead && bytes.HasPrefix(b, magic[:]) }

// eachField calls f with every field of a protobuf message. v is the
// field's payload for length-delimited fields and nil for the others,
// which are only checked for well-formedness.
func eachField(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		if typ == protowire.BytesType {
			v, n = protowire.ConsumeBytes(b)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, typ, v); err != nil {
			return err
		}
	}
	return nil
}

// decodeRecord reads one Record. As protobuf has it, a field of the wrong
// wire type is an unknown field, and the last of repeated scalars wins.
func decodeRecord(b []byte, pks, ehks []string) (UserRecord, error) {
	var u UserRecord
	var pkIdx, ehkIdx uint64
	hasPK, hasEHK, hasData := false, false, false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return u, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == fieldRecordPartitionKeyIndex && typ == protowire.VarintType:
			pkIdx, n = protowire.ConsumeVarint(b)
			hasPK = true
		case num == fieldRecordExplicitHashKeyIndex && typ == protowire.VarintType:
			ehkIdx, n = protowire.ConsumeVarint(b)
			hasEHK = true
		case num == fieldRecordData && typ == protowire.BytesType:
			u.Data, n = protowire.ConsumeBytes(b)
			hasData = true
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return u, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	switch {
	case !hasPK:
		return u, errors.New("no partition_key_index")
	case !hasData:
		return u, errors.New("no data")
	case pkIdx >= uint64(len(pks)):
		return u, fmt.Errorf("partition_key_index %d is past the partition key table of %d", pkIdx, len(pks))
	case hasEHK && ehkIdx >= uint64(len(ehks)):
		return u, fmt.Errorf("explicit_hash_key_index %d is past the explicit hash key table of %d", ehkIdx, len(ehks))
	}
	u.PartitionKey = pks[pkIdx]
	if hasEHK {
		u.ExplicitHashKey = ehks[ehkIdx]
	}
	return u, nil
}
