package testdecoding

import (
	"bytes"
	"fmt"
)

// scanner walks one message. Its errors name the byte offset.
type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) done() bool   { return s.pos >= len(s.data) }
func (s *scanner) rest() []byte { return s.data[s.pos:] }

func (s *scanner) peek() byte {
	if s.done() {
		return 0
	}
	return s.data[s.pos]
}

func (s *scanner) consume(lit string) bool {
	if bytes.HasPrefix(s.rest(), []byte(lit)) {
		s.pos += len(lit)
		return true
	}
	return false
}

// consumeWord consumes lit only when a space or the end follows it.
func (s *scanner) consumeWord(lit string) bool {
	r := s.rest()
	if bytes.HasPrefix(r, []byte(lit)) && (len(r) == len(lit) || r[len(lit)] == ' ') {
		s.pos += len(lit)
		return true
	}
	return false
}

// word returns the bytes up to the next space or the end.
func (s *scanner) word() []byte {
	r := s.rest()
	if i := bytes.IndexByte(r, ' '); i >= 0 {
		r = r[:i]
	}
	s.pos += len(r)
	return r
}

func (s *scanner) end() error {
	if !s.done() {
		return s.fail("unexpected text at the end")
	}
	return nil
}

func (s *scanner) fail(msg string) error {
	return fmt.Errorf("%s (at byte %d)", msg, s.pos)
}

func (s *scanner) uint32() (uint32, error) {
	start := s.pos
	for !s.done() && s.peek() >= '0' && s.peek() <= '9' {
		s.pos++
	}
	n, err := parseUint32(s.data[start:s.pos])
	if err != nil {
		s.pos = start
		return 0, s.fail("want a number")
	}
	return n, nil
}

// ident reads an identifier as quote_identifier prints it: bare up to a
// delimiter, or double-quoted with "" for a quote. A quoted identifier is
// unescaped into a fresh slice (identifiers are short and interned).
func (s *scanner) ident(delims ...byte) ([]byte, error) {
	if s.peek() != '"' {
		start := s.pos
		for !s.done() && bytes.IndexByte(delims, s.peek()) < 0 {
			s.pos++
		}
		if s.pos == start {
			return nil, s.fail("want an identifier")
		}
		return s.data[start:s.pos], nil
	}
	s.pos++
	var out []byte
	for {
		i := bytes.IndexByte(s.rest(), '"')
		if i < 0 {
			return nil, s.fail("unterminated quoted identifier")
		}
		out = append(out, s.rest()[:i]...)
		s.pos += i + 1
		if s.peek() != '"' {
			if len(out) == 0 {
				return nil, s.fail("empty quoted identifier")
			}
			return out, nil
		}
		out = append(out, '"')
		s.pos++
	}
}

// qualifiedName reads schema.table.
func (s *scanner) qualifiedName() ([2][]byte, error) {
	schema, err := s.ident('.', ':', ',', ' ')
	if err != nil {
		return [2][]byte{}, err
	}
	if !s.consume(".") {
		return [2][]byte{}, s.fail("want schema.table")
	}
	table, err := s.ident(':', ',', ' ')
	if err != nil {
		return [2][]byte{}, err
	}
	return [2][]byte{schema, table}, nil
}

// quoted reads a single-quoted literal with ” for a quote. Without a
// doubled quote the value aliases the message; otherwise it is unescaped
// into scratch, whose capacity the caller made large enough that appending
// never moves earlier values.
func (s *scanner) quoted(scratch *[]byte) ([]byte, error) {
	s.pos++ // the opening quote
	start := s.pos
	for {
		i := bytes.IndexByte(s.data[s.pos:], '\'')
		if i < 0 {
			return nil, s.fail("unterminated quoted value")
		}
		s.pos += i + 1
		if s.peek() != '\'' {
			break
		}
		s.pos++
	}
	raw := s.data[start : s.pos-1]
	if bytes.IndexByte(raw, '\'') < 0 {
		return raw, nil
	}
	from := len(*scratch)
	for i := 0; i < len(raw); i++ {
		*scratch = append(*scratch, raw[i])
		if raw[i] == '\'' {
			i++ // skip the doubled quote
		}
	}
	return (*scratch)[from:len(*scratch):len(*scratch)], nil
}
