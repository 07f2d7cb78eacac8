package format

import (
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// payload writes `0,CDC,{"xid": …, "table": …, "operation": …, "pkey": …}`
// with json.dumps' spacing and escapes.
type payload struct{ opts Options }

func (f payload) Append(dst []byte, ev *decode.Event, t decode.Table, key []string) []byte {
	dst = append(dst, `0,CDC,{"xid": `...)
	dst = appendXID(dst, f.opts.Plugin, ev.XID)
	dst = append(dst, `, "table": `...)
	dst = appendPyStr(dst, t.Raw)
	dst = append(dst, `, "operation": `...)
	dst = appendPyStr(dst, operation(f.opts.Plugin, ev.Op))
	dst = append(dst, `, "pkey": `...)
	var buf [4]*decode.Column
	cols, ok := keyColumns(buf[:0], ev, key)
	switch {
	case ev.Op == decode.Truncate || !ok:
		dst = append(dst, `""`...)
	case len(cols) == 1:
		dst = appendPyString(dst, cols[0].Value)
	default:
		dst = appendKeyText(dst, cols, ", ")
	}
	return append(dst, '}')
}

// appendXID writes the xid as the original did: test_decoding's text after
// BEGIN is a JSON string, wal2json's (and pgoutput's) xid a number.
func appendXID(dst []byte, p decode.Plugin, xid uint32) []byte {
	if p == decode.TestDecoding {
		dst = append(dst, '"')
		dst = appendUint(dst, xid)
		return append(dst, '"')
	}
	return appendUint(dst, xid)
}

// fullChange writes `0,CDC,{"xid": …, "change": {…}}` where the change is
// shaped as a wal2json format-version 1 change object.
type fullChange struct{ opts Options }

func (f fullChange) Append(dst []byte, ev *decode.Event, t decode.Table, _ []string) []byte {
	dst = append(dst, `0,CDC,{"xid": `...)
	dst = appendXID(dst, f.opts.Plugin, ev.XID)
	dst = append(dst, `, "change": {"kind": `...)
	dst = appendPyStr(dst, ev.Op.String())
	dst = append(dst, `, "schema": `...)
	dst = appendPyStr(dst, t.Schema)
	dst = append(dst, `, "table": `...)
	dst = appendPyStr(dst, t.Name)
	if carriesRow(ev.Op) {
		dst = append(dst, ", "...)
		dst = appendColumns(dst, "columnnames", "columntypes", "columnvalues", ev.New)
		if len(ev.UnchangedToast) > 0 {
			dst = append(dst, `, "unchangedtoast": [`...)
			for i, name := range ev.UnchangedToast {
				if i > 0 {
					dst = append(dst, ", "...)
				}
				dst = appendPyStr(dst, name)
			}
			dst = append(dst, ']')
		}
	}
	if carriesOld(ev.Op) && len(ev.Old) > 0 {
		dst = append(dst, `, "oldkeys": {`...)
		dst = appendColumns(dst, "keynames", "keytypes", "keyvalues", ev.Old)
		dst = append(dst, '}')
	}
	return append(dst, "}}"...)
}

// appendColumns writes `"<names>": […], "<types>": […], "<values>": […]`.
func appendColumns(dst []byte, names, types, values string, cols []decode.Column) []byte {
	for part, field := range [3]string{names, types, values} {
		if part > 0 {
			dst = append(dst, ", "...)
		}
		dst = appendPyStr(dst, field)
		dst = append(dst, ": ["...)
		for i := range cols {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			switch part {
			case 0:
				dst = appendPyStr(dst, cols[i].Name)
			case 1:
				dst = appendPyStr(dst, cols[i].Type)
			default:
				dst = appendPyValue(dst, &cols[i])
			}
		}
		dst = append(dst, ']')
	}
	return dst
}
