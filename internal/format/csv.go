package format

import (
	"bytes"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// csvFormatter writes `0,CDC,<xid>,<table>,<operation>,<pkey>`, quoting a
// field per RFC 4180 only when it needs it, so that every record the
// original could write ([\w-]+ keys) stays byte-identical.
type csvFormatter struct{ opts Options }

func (f csvFormatter) Append(dst []byte, ev *decode.Event, t decode.Table, key []string) []byte {
	dst = append(dst, "0,CDC,"...)
	dst = appendUint(dst, ev.XID)
	dst = append(dst, ',')
	dst = appendCSVField(dst, []byte(t.Raw))
	dst = append(dst, ',')
	dst = append(dst, operation(f.opts.Plugin, ev.Op)...)
	dst = append(dst, ',')
	if ev.Op == decode.Truncate {
		return dst
	}
	var buf [4]*decode.Column
	if cols, ok := keyColumns(buf[:0], ev, key); ok {
		if len(cols) == 1 {
			return appendCSVField(dst, cols[0].Value)
		}
		start := len(dst)
		dst = appendKeyText(dst, cols, ",")
		if needsQuotes(dst[start:]) {
			field := append([]byte(nil), dst[start:]...)
			dst = appendCSVField(dst[:start], field)
		}
	}
	return dst
}

func needsQuotes(b []byte) bool {
	return bytes.ContainsAny(b, ",\"\r\n")
}

func appendCSVField(dst, b []byte) []byte {
	if !needsQuotes(b) {
		return append(dst, b...)
	}
	dst = append(dst, '"')
	for _, c := range b {
		if c == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}
