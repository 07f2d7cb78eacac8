package wal2json

import (
	"bytes"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// lexer is a small JSON reader for wal2json's fixed message shape. Strings
// without escapes alias the message; escaped ones are decoded into scratch,
// whose capacity the parser makes large enough that appending never moves
// earlier values.
type lexer struct {
	data    []byte
	pos     int
	scratch *[]byte
}

func (l *lexer) fail(format string, args ...any) error {
	return fmt.Errorf(format+" (at byte %d)", append(args, l.pos)...)
}

func (l *lexer) ws() {
	for l.pos < len(l.data) {
		switch l.data[l.pos] {
		case ' ', '\t', '\n', '\r':
			l.pos++
		default:
			return
		}
	}
}

func (l *lexer) peek() byte {
	l.ws()
	if l.pos >= len(l.data) {
		return 0
	}
	return l.data[l.pos]
}

func (l *lexer) expect(c byte) error {
	if l.peek() != c {
		return l.fail("want %q", c)
	}
	l.pos++
	return nil
}

// more reports whether another element follows in an object or array that
// ends with end, consuming the comma between elements.
func (l *lexer) more(first bool, end byte) (bool, error) {
	c := l.peek()
	if c == end {
		l.pos++
		return false, nil
	}
	if first {
		return true, nil
	}
	if c != ',' {
		return false, l.fail("want , or %q", end)
	}
	l.pos++
	return true, nil
}

// str reads a JSON string.
func (l *lexer) str() ([]byte, error) {
	if l.peek() != '"' {
		return nil, l.fail("want a string")
	}
	l.pos++
	start := l.pos
	for l.pos < len(l.data) {
		switch c := l.data[l.pos]; {
		case c == '"':
			l.pos++
			return l.data[start : l.pos-1], nil
		case c == '\\':
			return l.unescape(start)
		case c < 0x20:
			return nil, l.fail("control character in string")
		}
		l.pos++
	}
	return nil, l.fail("unterminated string")
}

func (l *lexer) unescape(start int) ([]byte, error) {
	buf := *l.scratch
	from := len(buf)
	buf = append(buf, l.data[start:l.pos]...)
	for l.pos < len(l.data) {
		c := l.data[l.pos]
		switch {
		case c == '"':
			l.pos++
			*l.scratch = buf
			return buf[from:len(buf):len(buf)], nil
		case c < 0x20:
			return nil, l.fail("control character in string")
		case c != '\\':
			buf = append(buf, c)
			l.pos++
			continue
		}
		if l.pos+1 >= len(l.data) {
			return nil, l.fail("unterminated escape")
		}
		e := l.data[l.pos+1]
		l.pos += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, err := l.hex4()
			if err != nil {
				return nil, err
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(utf8.RuneError)
				if bytes.HasPrefix(l.data[l.pos:], []byte(`\u`)) {
					l.pos += 2
					if r2, err = l.hex4(); err != nil {
						return nil, err
					}
				}
				r = utf16.DecodeRune(r, r2)
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return nil, l.fail("invalid escape \\%c", e)
		}
	}
	return nil, l.fail("unterminated string")
}

func (l *lexer) hex4() (rune, error) {
	if l.pos+4 > len(l.data) {
		return 0, l.fail("short \\u escape")
	}
	var r rune
	for _, c := range l.data[l.pos : l.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, l.fail("bad \\u escape")
		}
	}
	l.pos += 4
	return r, nil
}

// literal reads a number, true, false or null as its raw bytes.
func (l *lexer) literal() ([]byte, error) {
	l.ws()
	start := l.pos
	for l.pos < len(l.data) {
		c := l.data[l.pos]
		if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\n' || c == '\t' || c == '\r' {
			break
		}
		l.pos++
	}
	if l.pos == start {
		return nil, l.fail("want a value")
	}
	return l.data[start:l.pos], nil
}

// skip reads and discards any JSON value nested at most depth deep.
func (l *lexer) skip(depth int) error {
	if depth == 0 {
		return l.fail("value nested too deep")
	}
	switch l.peek() {
	case '"':
		_, err := l.str()
		return err
	case '{', '[':
		open := l.data[l.pos]
		end := byte('}')
		if open == '[' {
			end = ']'
		}
		l.pos++
		for first := true; ; first = false {
			ok, err := l.more(first, end)
			if err != nil || !ok {
				return err
			}
			if open == '{' {
				if _, err := l.str(); err != nil {
					return err
				}
				if err := l.expect(':'); err != nil {
					return err
				}
			}
			if err := l.skip(depth - 1); err != nil {
				return err
			}
		}
	}
	_, err := l.literal()
	return err
}
