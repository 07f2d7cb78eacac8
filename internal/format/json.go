package format

import (
	"strings"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// jsonFormatter writes docs/formats.md §4's record, one compact object per change:
//
//	{"op":…,"schema":…,"table":…,"xid":…,"lsn":…,"commit_lsn":…,"commit_time":…,
//	 "pk":{…}|null,"before":{…}|null,"after":{…}|null,"unchanged_toast":[…]}
//
// It is ours, not the original's, so it uses standard JSON (jsonstr.go)
// rather than json.dumps' spacing and escapes, and it is the same for every
// plugin: the op is always lower case and the xid always a number. It always
// carries the whole row the plugin gave; --full-change only decides whether
// tables without a primary key are published, which the handler enforces.
type jsonFormatter struct {
	baseType func(string) (string, bool) // see Options.BaseType
}

// rfc3339Micro is RFC 3339 with Postgres' full precision: commit times are
// microseconds, and a fixed width keeps them comparable as text.
const rfc3339Micro = "2006-01-02T15:04:05.000000Z07:00"

func (f jsonFormatter) Append(dst []byte, ev *decode.Event, t decode.Table, key []string) []byte {
	dst = append(dst, `{"op":`...)
	dst = appendJSONStr(dst, ev.Op.String())
	dst = append(dst, `,"schema":`...)
	dst = appendJSONStr(dst, t.Schema)
	dst = append(dst, `,"table":`...)
	dst = appendJSONStr(dst, t.Name)
	dst = append(dst, `,"xid":`...)
	dst = appendUint(dst, ev.XID)
	dst = append(dst, `,"lsn":`...)
	dst = appendLSN(dst, ev.LSN)
	// A zero commit LSN or time means the plugin did not say (test_decoding
	// never does before the commit): null, rather than a fake value.
	dst = append(dst, `,"commit_lsn":`...)
	if ev.CommitLSN == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = appendLSN(dst, ev.CommitLSN)
	}
	dst = append(dst, `,"commit_time":`...)
	if ev.CommitTime.IsZero() {
		dst = append(dst, "null"...)
	} else {
		// UTC, so that the text does not depend on the server's TimeZone.
		dst = append(dst, '"')
		dst = ev.CommitTime.UTC().AppendFormat(dst, rfc3339Micro)
		dst = append(dst, '"')
	}

	dst = append(dst, `,"pk":`...)
	var buf [4]*decode.Column
	if cols, ok := keyColumns(buf[:0], ev, key); ok && ev.Op != decode.Truncate {
		dst = append(dst, '{')
		for i, c := range cols {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONStr(dst, c.Name)
			dst = append(dst, ':')
			dst = f.appendValue(dst, c)
		}
		dst = append(dst, '}')
	} else {
		dst = append(dst, "null"...)
	}

	dst = append(dst, `,"before":`...)
	if carriesOld(ev.Op) && len(ev.Old) > 0 {
		dst = f.appendRow(dst, ev.Old)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"after":`...)
	if carriesRow(ev.Op) {
		dst = f.appendRow(dst, ev.New) // {} for a table without columns
	} else {
		dst = append(dst, "null"...)
	}

	dst = append(dst, `,"unchanged_toast":[`...)
	for i, name := range ev.UnchangedToast {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONStr(dst, name)
	}
	return append(dst, "]}"...)
}

// appendRow writes cols as an object of column name to value, in column
// order.
func (f jsonFormatter) appendRow(dst []byte, cols []decode.Column) []byte {
	dst = append(dst, '{')
	for i := range cols {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONStr(dst, cols[i].Name)
		dst = append(dst, ':')
		dst = f.appendValue(dst, &cols[i])
	}
	return append(dst, '}')
}

// appendValue writes c as appendJSONValue does, a domain's value as its
// base type's: test_decoding and wal2json name the domain and print its
// value as text, pgoutput names the base type.
func (f jsonFormatter) appendValue(dst []byte, c *decode.Column) []byte {
	if f.baseType == nil || c.Null || c.Kind != decode.String {
		return appendJSONValue(dst, c)
	}
	base, ok := f.baseType(c.Type)
	if !ok {
		return appendJSONValue(dst, c)
	}
	typed := *c
	typed.Type, typed.Kind = base, kindOf(base)
	return appendJSONValue(dst, &typed)
}

// kindOf is how JSON writes the values of built-in type name (as
// format_type names it, modifier aside).
func kindOf(name string) decode.ValueKind {
	if i := strings.IndexByte(name, '('); i >= 0 {
		name = name[:i]
	}
	switch name {
	case "smallint", "integer", "bigint", "numeric", "real", "double precision", "oid":
		return decode.Number
	case "boolean":
		return decode.Bool
	}
	return decode.String
}

// appendJSONValue writes a value typed as in full change (numbers and
// booleans bare, null, everything else a string), except that json and
// jsonb values are nested as JSON.
func appendJSONValue(dst []byte, c *decode.Column) []byte {
	if out, ok := appendScalar(dst, c); ok {
		return out
	}
	if c.Type == "json" || c.Type == "jsonb" {
		return appendRawJSON(dst, c.Value)
	}
	if c.Type == "bytea" && isBareHex(c.Value) {
		// wal2json prints bytea as bare hex, Postgres (test_decoding,
		// pgoutput) as \x and hex: JSON has one shape, Postgres'.
		dst = append(dst, `"\\x`...)
		dst = append(dst, c.Value...)
		return append(dst, '"')
	}
	return appendJSONString(dst, c.Value)
}

// isBareHex reports whether v is hex digits in pairs, without the \x that
// Postgres' hex format starts with.
func isBareHex(v []byte) bool {
	if len(v)%2 != 0 {
		return false
	}
	for _, c := range v {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// appendLSN writes lsn as a JSON string the way Postgres and
// pglogrepl.LSN.String write it ("16/B374D848"), without fmt's allocations.
func appendLSN(dst []byte, lsn pglogrepl.LSN) []byte {
	dst = append(dst, '"')
	dst = appendUpperHex(dst, uint32(lsn>>32))
	dst = append(dst, '/')
	dst = appendUpperHex(dst, uint32(lsn))
	return append(dst, '"')
}

func appendUpperHex(dst []byte, v uint32) []byte {
	const digits = "0123456789ABCDEF"
	var b [8]byte
	i := len(b)
	for {
		i--
		b[i] = digits[v&0xf]
		if v >>= 4; v == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}
