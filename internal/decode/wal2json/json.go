package wal2json

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// lexer reads the JSON of one message in place. Strings without escapes
// alias the message; escaped ones are decoded into scratch, which the lexer
// keeps from message to message.
type lexer struct {
	data    []byte
	pos     int
	scratch []byte
}

// errAt describes a syntax error and where it is.
func (l *lexer) errAt(format string, args ...any) error {
	return fmt.Errorf(format+" at byte %d", append(args, l.pos)...)
}

// peek skips white space and returns the next byte, 0 at the end.
func (l *lexer) peek() byte {
	for l.pos < len(l.data) {
		c := l.data[l.pos]
		if c > ' ' || c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c
		}
		l.pos++
	}
	return 0
}

func (l *lexer) expect(c byte) error {
	if l.peek() != c {
		return l.errAt("want %q", c)
	}
	l.pos++
	return nil
}

// next reports whether another member or element follows in an object or
// array closed by end, consuming the comma before it.
func (l *lexer) next(first bool, end byte) (bool, error) {
	c := l.peek()
	switch {
	case c == end:
		l.pos++
		return false, nil
	case first:
		return true, nil
	case c == ',':
		l.pos++
		return true, nil
	}
	return false, l.errAt("want ',' or %q", end)
}

// key reads an object member's name and the colon after it.
func (l *lexer) key() ([]byte, error) {
	k, err := l.str()
	if err != nil {
		return nil, err
	}
	return k, l.expect(':')
}

// str reads a string. Control characters are let through: wal2json
// escapes them, and a value is only ever text to us.
func (l *lexer) str() ([]byte, error) {
	if l.peek() != '"' {
		return nil, l.errAt("want a string")
	}
	d := l.data
	start := l.pos + 1
	i := start
	// Most strings (keys, names, types, short values) end before
	// IndexByte's setup pays off.
	for n := min(len(d), start+24); i < n; i++ {
		switch d[i] {
		case '"':
			l.pos = i + 1
			return d[start:i:i], nil
		case '\\':
			return l.unescape(start, i, -1)
		}
	}
	q := bytes.IndexByte(d[i:], '"')
	if q < 0 {
		l.pos = len(d)
		return nil, l.errAt("unterminated string")
	}
	q += i
	if b := bytes.IndexByte(d[i:q], '\\'); b >= 0 {
		return l.unescape(start, i+b, q)
	}
	l.pos = q + 1
	return d[start:q:q], nil
}

// unescape decodes the string that starts at start and has its first
// backslash at i. q is the first quote after i, or less than i if unknown.
func (l *lexer) unescape(start, i, q int) ([]byte, error) {
	if len(l.scratch) == 0 && cap(l.scratch) < len(l.data) {
		// Decoded text is never longer than its JSON, so one buffer the
		// size of the message holds every string of it.
		l.scratch = make([]byte, 0, len(l.data))
	}
	from := len(l.scratch)
	buf := append(l.scratch, l.data[start:i]...)
	for {
		if i > q { // unknown, or the quote found was escaped: find the next
			n := bytes.IndexByte(l.data[i:], '"')
			if n < 0 {
				l.pos = len(l.data)
				return nil, l.errAt("unterminated string")
			}
			q = i + n
		}
		b := bytes.IndexByte(l.data[i:q], '\\')
		if b < 0 {
			buf = append(buf, l.data[i:q]...)
			l.pos, l.scratch = q+1, buf
			return buf[from:len(buf):len(buf)], nil
		}
		buf = append(buf, l.data[i:i+b]...)
		l.pos = i + b
		var err error
		if buf, err = l.escape(buf); err != nil {
			return nil, err
		}
		i = l.pos
	}
}

// escape decodes the escape sequence at l.pos onto buf.
func (l *lexer) escape(buf []byte) ([]byte, error) {
	if l.pos+1 >= len(l.data) {
		return nil, l.errAt("unterminated escape")
	}
	e := l.data[l.pos+1]
	l.pos += 2
	switch e {
	case '"', '\\', '/':
		return append(buf, e), nil
	case 'b':
		return append(buf, '\b'), nil
	case 'f':
		return append(buf, '\f'), nil
	case 'n':
		return append(buf, '\n'), nil
	case 'r':
		return append(buf, '\r'), nil
	case 't':
		return append(buf, '\t'), nil
	case 'u':
		r, err := l.hex4()
		if err != nil {
			return nil, err
		}
		if utf16.IsSurrogate(r) {
			// A high surrogate and a low one make a pair; anything else
			// is a lone surrogate, which becomes U+FFFD as in encoding/json.
			r2 := utf8.RuneError
			if r < 0xDC00 && bytes.HasPrefix(l.data[l.pos:], []byte(`\u`)) {
				save := l.pos
				l.pos += 2
				if lo, err := l.hex4(); err == nil && lo >= 0xDC00 && lo <= 0xDFFF {
					r2 = utf16.DecodeRune(r, lo)
				} else {
					l.pos = save
				}
			}
			r = r2
		}
		return utf8.AppendRune(buf, r), nil
	}
	l.pos -= 2
	return nil, l.errAt("invalid escape \\%c", e)
}

func (l *lexer) hex4() (rune, error) {
	if l.pos+4 > len(l.data) {
		return 0, l.errAt("short \\u escape")
	}
	var r rune
	for _, c := range l.data[l.pos : l.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, l.errAt("bad \\u escape")
		}
		r = r<<4 | rune(c)
	}
	l.pos += 4
	return r, nil
}

// word reads the literal w (true, false, null) if it is next.
func (l *lexer) word(w string) bool {
	if l.peek() != w[0] || !bytes.HasPrefix(l.data[l.pos:], []byte(w)) {
		return false
	}
	l.pos += len(w)
	return true
}

// number reads a number as JSON spells it and returns its text.
func (l *lexer) number() ([]byte, error) {
	l.peek()
	start := l.pos
	d := l.data
	i := start
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i = digits(d, i)
	default:
		return nil, l.errAt("want a value")
	}
	if i < len(d) && d[i] == '.' {
		if j := digits(d, i+1); j > i+1 {
			i = j
		} else {
			return nil, l.errAt("bad number")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := digits(d, i)
		if j == i {
			return nil, l.errAt("bad number")
		}
		i = j
	}
	l.pos = i
	return d[start:i:i], nil
}

func digits(d []byte, i int) int {
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		i++
	}
	return i
}

var errTooDeep = errors.New("value nested too deep")

// skip reads and discards one value nested at most depth deep.
func (l *lexer) skip(depth int) error {
	if depth == 0 {
		return l.errAt("%v", errTooDeep)
	}
	switch c := l.peek(); c {
	case '"':
		_, err := l.str()
		return err
	case '{', '[':
		end := byte(']')
		if c == '{' {
			end = '}'
		}
		l.pos++
		for first := true; ; first = false {
			more, err := l.next(first, end)
			if err != nil || !more {
				return err
			}
			if c == '{' {
				if _, err := l.key(); err != nil {
					return err
				}
			}
			if err := l.skip(depth - 1); err != nil {
				return err
			}
		}
	}
	if l.word("true") || l.word("false") || l.word("null") {
		return nil
	}
	_, err := l.number()
	return err
}
