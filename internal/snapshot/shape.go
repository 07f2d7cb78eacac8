package snapshot

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/decode/pgoutput"
)

var (
	textTrue  = []byte("true")
	textFalse = []byte("false")
)

// shaper turns rows read as text into events. One serves one chunk.
type shaper struct {
	t   *Table
	pgo *pgoutput.Parser // pgoutput: primed with the table's Relation message
	msg []byte           // pgoutput: the Insert message being built
}

func (t *Table) newShaper() (*shaper, error) {
	s := &shaper{t: t}
	if t.plugin != decode.PGOutput {
		return s, nil
	}
	s.pgo = pgoutput.New()
	for _, m := range t.preamble {
		if _, err := s.pgo.Parse(m, 0); err != nil {
			return nil, fmt.Errorf("describe the table to the pgoutput parser: %w", err)
		}
	}
	return s, nil
}

// shape makes ev, zeroed, the event of one row, its columns in cols (one
// per printed column). vals are the printed columns' values as Postgres'
// text output, nil for NULL. The event is valid until the next call: its
// values alias vals, or with pgoutput the message built for the row.
func (s *shaper) shape(ev *decode.Event, cols []decode.Column, vals [][]byte) error {
	t := s.t
	if t.plugin == decode.PGOutput {
		return s.pgoutput(ev, cols, vals)
	}
	ev.Kind, ev.Op, ev.Table, ev.New = decode.KindChange, decode.Read, t.table, cols
	for i, c := range t.cols {
		col := decode.Column{Name: c.name, Type: c.typ}
		v := vals[i]
		switch {
		case v == nil:
			col.Null = true
		case c.style == number:
			col.Kind, col.Value = decode.Number, v
			if t.plugin == decode.Wal2JSON && nonFinite(v) {
				// wal2json prints them as null: JSON has no NaN.
				col.Kind, col.Value, col.Null = decode.String, nil, true
			}
		case c.style == boolean:
			col.Kind, col.Value = decode.Bool, textFalse
			if len(v) == 1 && v[0] == 't' {
				col.Value = textTrue
			}
		case c.style == bytea && t.plugin == decode.Wal2JSON && len(v) >= 2:
			col.Value = v[2:] // wal2json skips the first two bytes, \x
		default:
			col.Value = v
		}
		ev.New[i] = col
	}
	if t.plugin == decode.Wal2JSON {
		ev.PrimaryKey, ev.KeyStated = t.primaryKey, true
	}
	return nil
}

// nonFinite matches the values wal2json prints as null, as it does:
// case-insensitive prefixes.
func nonFinite(v []byte) bool {
	for _, p := range []string{"NaN", "Infinity", "-Infinity"} {
		if len(v) >= len(p) && strings.EqualFold(string(v[:len(p)]), p) {
			return true
		}
	}
	return false
}

// pgoutput encodes the row as the Insert message the server would send
// and has the parser decode it: its names, kinds and key are then the
// parser's own.
func (s *shaper) pgoutput(out *decode.Event, cols []decode.Column, vals [][]byte) error {
	m := append(s.msg[:0], 'I')
	m = binary.BigEndian.AppendUint32(m, s.t.relID)
	m = append(m, 'N')
	m = binary.BigEndian.AppendUint16(m, uint16(len(s.t.cols)))
	for _, v := range vals[:len(s.t.cols)] {
		if v == nil {
			m = append(m, 'n')
			continue
		}
		m = append(m, 't')
		m = binary.BigEndian.AppendUint32(m, uint32(len(v)))
		m = append(m, v...)
	}
	s.msg = m
	ev, err := s.pgo.Parse(m, 0)
	if err != nil {
		return err
	}
	if ev.Kind != decode.KindChange || ev.Op != decode.Insert || len(ev.New) != len(s.t.cols) {
		return fmt.Errorf("the pgoutput parser read the row as %s %s of %d columns", ev.Kind, ev.Op, len(ev.New))
	}
	*out = decode.Event{Kind: decode.KindChange, Op: decode.Read, Table: ev.Table, IdentityKey: ev.IdentityKey, New: cols}
	copy(out.New, ev.New)
	return nil
}

// typeMessage is the Type message pgoutput sends before the Relation
// message of a table with a column of a type outside the built-in ones:
// the type's OID, with the schema and name of its base type.
func typeMessage(oid uint32, namespace, name string) []byte {
	m := []byte{'Y'}
	m = binary.BigEndian.AppendUint32(m, oid)
	m = append(append(m, namespace...), 0)
	return append(append(m, name...), 0)
}

// relationMessage is pgoutput's Relation message for the table.
func relationMessage(id uint32, t decode.Table, replident string, cols []column) []byte {
	m := []byte{'R'}
	m = binary.BigEndian.AppendUint32(m, id)
	m = append(append(m, t.Schema...), 0)
	m = append(append(m, t.Name...), 0)
	m = append(m, replident...)
	m = binary.BigEndian.AppendUint16(m, uint16(len(cols)))
	for _, c := range cols {
		var flags byte
		if c.identity {
			flags = 1
		}
		m = append(m, flags)
		m = append(append(m, c.name...), 0)
		m = binary.BigEndian.AppendUint32(m, c.typOID)
		m = binary.BigEndian.AppendUint32(m, uint32(c.typmod))
	}
	return m
}
