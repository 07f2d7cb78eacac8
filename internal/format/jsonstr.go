package format

import (
	"unicode/utf8"
)

// Standard JSON (RFC 8259) for the JSON formatter, as opposed to pyjson.go's
// imitation of json.dumps: valid UTF-8 passes through as it is; only '"',
// '\' and the control characters are escaped, and an invalid UTF-8 byte
// becomes U+FFFD, as encoding/json does, since a JSON text must be Unicode.

// appendJSONString appends s as a JSON string.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is pending, to be copied in one append
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendEscapedASCII(dst, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendJSONStr appends s as a JSON string. Names are nearly always plain
// ASCII, which is copied as it is; only the others pay for the conversion.
func appendJSONStr(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return appendJSONString(dst, []byte(s))
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendRawJSON nests a json or jsonb value as JSON, without its
// insignificant whitespace, so that the record stays compact and on one
// line (json keeps its input's newlines and indentation; jsonb prints
// ": " and ", ").
//
// The value is not parsed: Postgres accepts a json value only when it is
// valid JSON (json checks its input, jsonb stores a parse tree and prints it
// back), so parsing every value again would only cost time. The cheap checks
// made while copying (valid UTF-8, something there, strings closed, brackets
// balanced) are there so that a value mangled on its way (a non-UTF-8
// database, a decoder bug) can never break the whole record: such a value
// is written as a JSON string instead.
func appendRawJSON(dst, v []byte) []byte {
	if !utf8.Valid(v) {
		return appendJSONString(dst, v)
	}
	start := len(dst)
	depth, inString, escaped := 0, false, false
	for _, c := range v {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			case c < 0x20: // Postgres rejects these unescaped
				return appendJSONString(dst[:start], v)
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth--; depth < 0 {
				return appendJSONString(dst[:start], v)
			}
		}
		dst = append(dst, c)
	}
	if len(dst) == start || depth != 0 || inString {
		return appendJSONString(dst[:start], v)
	}
	return dst
}
