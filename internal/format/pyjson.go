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
			switch c {
			case '"':
				dst = append(dst, '\\', '"')
			case '\\':
				dst = append(dst, '\\', '\\')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				if c < 0x20 || c == 0x7f { // json.dumps keeps only space to tilde
					dst = appendU(dst, rune(c))
				} else {
					dst = append(dst, c)
				}
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
	switch {
	case c.Null:
		return append(dst, "null"...)
	case c.Kind == decode.Bool:
		if string(c.Value) == "true" || string(c.Value) == "t" {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case c.Kind == decode.Number && isJSONNumber(c.Value):
		return append(dst, c.Value...)
	}
	return appendPyString(dst, c.Value)
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
