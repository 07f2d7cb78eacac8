package format

import (
	"strconv"
	"unicode/utf8"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// The original wrote its JSON with Python's json.dumps defaults: ", " and
// ": " separators, and ensure_ascii, which escapes every non-ASCII
// character as \uXXXX (a surrogate pair above U+FFFF). These appenders
// reproduce that byte for byte.

const hexDigits = "0123456789abcdef"

// appendPyString appends s as a JSON string the way json.dumps does.
func appendPyString(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			if c < 0x20 || c == '"' || c == '\\' || c == 0x7f { // json.dumps keeps only space to tilde
				dst = appendEscapedASCII(dst, c)
			} else {
				dst = append(dst, c)
			}
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		i += size
		if r >= 0x10000 {
			r -= 0x10000
			dst = appendU(dst, 0xd800+(r>>10))
			dst = appendU(dst, 0xdc00+(r&0x3ff))
			continue
		}
		dst = appendU(dst, r) // includes U+FFFD for invalid UTF-8
	}
	return append(dst, '"')
}

// appendEscapedASCII appends the escape of an ASCII byte that a JSON
// string may not hold as it is: the short forms where JSON has them,
// \u00XX otherwise. Both JSON writers share it.
func appendEscapedASCII(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	}
	return appendU(dst, rune(c))
}

func appendU(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u',
		hexDigits[(r>>12)&0xf], hexDigits[(r>>8)&0xf], hexDigits[(r>>4)&0xf], hexDigits[r&0xf])
}

func appendPyStr(dst []byte, s string) []byte {
	return appendPyString(dst, []byte(s))
}

// appendPyValue appends a column value typed as JSON: numbers and booleans
// bare, NULL as null, everything else a string. A "number" that JSON cannot
// carry (NaN, Infinity) becomes a string rather than invalid JSON.
func appendPyValue(dst []byte, c *decode.Column) []byte {
	if out, ok := appendScalar(dst, c); ok {
		return out
	}
	return appendPyString(dst, c.Value)
}

// appendScalar appends what both JSON writers write alike: null, a boolean
// or a number JSON can carry. ok is false for every other value.
func appendScalar(dst []byte, c *decode.Column) (out []byte, ok bool) {
	switch {
	case c.Null:
		return append(dst, "null"...), true
	case c.Kind == decode.Bool:
		if string(c.Value) == "true" || string(c.Value) == "t" {
			return append(dst, "true"...), true
		}
		return append(dst, "false"...), true
	case c.Kind == decode.Number && isJSONNumber(c.Value):
		return append(dst, c.Value...), true
	}
	return dst, false
}

// isJSONNumber reports whether b is a number in JSON's grammar.
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i == len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i == len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	return i == len(b)
}

func appendUint(dst []byte, v uint32) []byte {
	return strconv.AppendUint(dst, uint64(v), 10)
}
