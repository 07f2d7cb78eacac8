package pgoutput

import (
	"encoding/binary"
	"fmt"

	"github.com/jackc/pglogrepl"
)

// checkLengths checks that the counts and lengths of an Insert, Update,
// Delete or Truncate message fit in the message, before pglogrepl decodes
// it: pglogrepl trusts them, so a corrupt one would make it allocate up to
// 16 GiB, or index past the end, instead of failing.
func checkLengths(data []byte, inStream bool) error {
	typ := pglogrepl.MessageType(data[0])
	b := data[1:]
	if inStream {
		b = skip(b, 4)
	}
	switch typ {
	case pglogrepl.MessageTypeInsert, pglogrepl.MessageTypeUpdate, pglogrepl.MessageTypeDelete:
	case pglogrepl.MessageTypeTruncate:
		if len(b) >= 5 && uint64(binary.BigEndian.Uint32(b))*4 > uint64(len(b)-5) {
			return fmt.Errorf("%d relations do not fit in the message", binary.BigEndian.Uint32(b))
		}
		return nil
	default:
		return nil
	}
	b = skip(b, 4) // relation id
	for len(b) > 0 {
		marker := b[0]
		b = b[1:]
		switch marker {
		case 'N', 'K', 'O':
		default:
			return fmt.Errorf("unknown tuple marker %q", marker)
		}
		var err error
		if b, err = checkTuple(b); err != nil {
			return err
		}
		if marker == 'N' {
			break
		}
	}
	return nil
}

// checkTuple checks one TupleData and returns what follows it.
func checkTuple(b []byte) ([]byte, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("tuple data cut short")
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	for i := range n {
		if len(b) < 1 {
			return nil, fmt.Errorf("tuple data cut short at column %d of %d", i+1, n)
		}
		kind := b[0]
		b = b[1:]
		if kind != pglogrepl.TupleDataTypeText && kind != pglogrepl.TupleDataTypeBinary {
			continue
		}
		if len(b) < 4 || uint64(binary.BigEndian.Uint32(b)) > uint64(len(b)-4) {
			return nil, fmt.Errorf("column %d of %d: value length past the end of the message", i+1, n)
		}
		b = b[4+binary.BigEndian.Uint32(b):]
	}
	return b, nil
}

func skip(b []byte, n int) []byte {
	if len(b) < n {
		return nil
	}
	return b[n:]
}
