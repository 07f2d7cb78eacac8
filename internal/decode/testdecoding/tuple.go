package testdecoding

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// scanner walks one message. Its errors name the byte offset, since the
// ParseError quotes only the first 200 bytes of a message.
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

// lit consumes lit if the message goes on with it.
func (s *scanner) lit(lit string) bool {
	r := s.rest()
	if len(r) >= len(lit) && string(r[:len(lit)]) == lit {
		s.pos += len(lit)
		return true
	}
	return false
}

// word consumes lit only when a space or the end follows it.
func (s *scanner) word(lit string) bool {
	r := s.rest()
	if len(r) >= len(lit) && string(r[:len(lit)]) == lit && (len(r) == len(lit) || r[len(lit)] == ' ') {
		s.pos += len(lit)
		return true
	}
	return false
}

func (s *scanner) end() error {
	if !s.done() {
		return s.fail("want the end of the line")
	}
	return nil
}

func (s *scanner) fail(msg string) error {
	return fmt.Errorf("%s (at byte %d)", msg, s.pos)
}

func (s *scanner) uint32(field string) (uint32, error) {
	var n uint64
	start := s.pos
	for ; !s.done() && s.peek() >= '0' && s.peek() <= '9'; s.pos++ {
		n = n*10 + uint64(s.peek()-'0')
		if n > 1<<32-1 {
			s.pos = start
			return 0, s.fail("want a 32-bit " + field)
		}
	}
	if s.pos == start {
		return 0, s.fail("want a number for " + field)
	}
	return uint32(n), nil
}

// ident reads an identifier as quote_identifier prints it: bare up to one
// of stops, or double-quoted with "" for a quote. It returns it unquoted
// and interned.
func (p *Parser) ident(s *scanner, what, stops string) (string, error) {
	start := s.pos
	if s.peek() != '"' {
		for !s.done() && strings.IndexByte(stops, s.peek()) < 0 {
			s.pos++
		}
		if s.pos == start {
			return "", s.fail("want a " + what)
		}
		return p.str(s.data[start:s.pos]), nil
	}
	raw, escaped, ok := closeQuote(s.data, start+1, '"')
	if !ok {
		return "", s.fail("unterminated quoted " + what)
	}
	s.pos = start + 1 + len(raw) + 1
	if len(raw) == 0 {
		// Postgres has no zero-length identifiers.
		return "", s.fail("empty quoted " + what)
	}
	if escaped {
		raw = p.unescape(raw, '"', len(s.data))
	}
	return p.str(raw), nil
}

// closeQuote finds the end of a literal quoted with q that opened just
// before data[from], with q doubled inside. It returns the text between
// the quotes and whether it holds a doubled q.
func closeQuote(data []byte, from int, q byte) (raw []byte, escaped, ok bool) {
	i := from
	for {
		j := bytes.IndexByte(data[i:], q)
		if j < 0 {
			return nil, false, false
		}
		i += j
		if i+1 < len(data) && data[i+1] == q {
			escaped = true
			i += 2
			continue
		}
		return data[from:i], escaped, true
	}
}

// unescape appends raw to scratch with every doubled q made single, and
// returns that. Values returned earlier for the same message are never
// written over: scratch is only appended to, and replaced when full. What
// one message unescapes is shorter than the message (total), so sizing
// scratch to that on first use means it is replaced at most once.
func (p *Parser) unescape(raw []byte, q byte, total int) []byte {
	if cap(p.scratch)-len(p.scratch) < len(raw) || (len(p.scratch) == 0 && cap(p.scratch) < total) {
		p.scratch = make([]byte, 0, max(total, len(raw)))
	}
	from := len(p.scratch)
	for {
		j := bytes.IndexByte(raw, q)
		if j < 0 || j+1 >= len(raw) {
			p.scratch = append(p.scratch, raw...)
			break
		}
		p.scratch = append(p.scratch, raw[:j+1]...)
		raw = raw[j+2:]
	}
	return p.scratch[from:len(p.scratch):len(p.scratch)]
}

// tuple reads " name[type]:value" columns into cols, up to the end of the
// line or stop. A lone " (no-tuple-data)" is the plugin saying it has no
// row, as for a DELETE on a table without replica identity.
func (p *Parser) tuple(s *scanner, cols *[]decode.Column, what, stop string) error {
	if stop == "" && s.lit(" (no-tuple-data)") {
		return s.end()
	}
	for n := 1; !s.done(); n++ {
		if stop != "" && bytes.HasPrefix(s.rest(), []byte(stop)) {
			return nil
		}
		if !s.lit(" ") {
			return s.fail(fmt.Sprintf("%s, column %d: want a space before it", what, n))
		}
		if name, err := p.column(s, cols); err != nil {
			if name != "" {
				return fmt.Errorf("%s, column %d %q: %w", what, n, name, err)
			}
			return fmt.Errorf("%s, column %d: %w", what, n, err)
		}
	}
	return nil
}

// column reads name[type]:value. The value's form says its kind: print_literal
// quotes all but numbers, booleans and bit strings, and null and
// unchanged-toast-datum are never quoted.
// Its errors leave out the column's name, which it returns when it got it.
func (p *Parser) column(s *scanner, cols *[]decode.Column) (string, error) {
	name, err := p.ident(s, "column name", "[ ")
	if err != nil {
		return "", err
	}
	if !s.lit("[") {
		return name, s.fail("want [type] after the name")
	}
	typ, err := s.typeName()
	if err != nil {
		return name, err
	}
	c := decode.Column{Name: name, Type: p.str(typ)}
	start := s.pos
	switch s.peek() {
	case '\'':
		raw, escaped, ok := closeQuote(s.data, s.pos+1, '\'')
		if !ok {
			return name, s.fail("unterminated quoted value")
		}
		s.pos += 1 + len(raw) + 1
		if escaped {
			c.Value = p.unescape(raw, '\'', len(s.data))
		} else {
			c.Value = raw[:len(raw):len(raw)]
		}
	case 'B':
		// bit and bit varying: B'0101'.
		if !s.lit("B'") {
			return name, s.fail("want a bit string B'0101'")
		}
		raw, escaped, ok := closeQuote(s.data, s.pos, '\'')
		if !ok || escaped || !onlyBits(raw) {
			return name, s.fail("want a bit string B'0101'")
		}
		s.pos += len(raw) + 1
		c.Value = raw[:len(raw):len(raw)]
	default:
		v := s.rest()
		if i := bytes.IndexByte(v, ' '); i >= 0 {
			v = v[:i]
		}
		switch string(v) {
		case "null":
			c.Null = true
		case "unchanged-toast-datum":
			// Postgres logs an old tuple flattened, so this should only
			// come in a new one; in an old one the column is just left out.
			s.pos += len(v)
			if cols == &p.ev.New {
				p.ev.UnchangedToast = append(p.ev.UnchangedToast, name)
			}
			return name, nil
		case "true", "false":
			c.Kind, c.Value = decode.Bool, v[:len(v):len(v)]
		default:
			if !isNumber(v) {
				return name, s.fail("want a quoted value, a number, true, false or null")
			}
			c.Kind, c.Value = decode.Number, v[:len(v):len(v)]
		}
		s.pos += len(v)
	}
	if !s.done() && s.peek() != ' ' {
		s.pos = start
		return name, s.fail("want a space or the end of the line after the value")
	}
	*cols = append(*cols, c)
	return name, nil
}

// typeName reads a format_type_be name up to "]:": "integer[]",
// "character varying", "My Schema"."t y" (a quoted name may hold "]:").
func (s *scanner) typeName() ([]byte, error) {
	quoted := false
	for i := s.pos; i < len(s.data); i++ {
		switch c := s.data[i]; {
		case c == '"':
			quoted = !quoted
		case c == ']' && !quoted && i+1 < len(s.data) && s.data[i+1] == ':':
			if i == s.pos {
				return nil, s.fail("empty type name")
			}
			t := s.data[s.pos:i]
			s.pos = i + 2
			return t, nil
		}
	}
	return nil, s.fail("want ]: after the type name")
}

func onlyBits(b []byte) bool {
	for _, c := range b {
		if c != '0' && c != '1' {
			return false
		}
	}
	return true
}

// isNumber accepts what the output functions of int2, int4, int8, oid,
// float4, float8 and numeric print, which test_decoding leaves unquoted.
func isNumber(b []byte) bool {
	switch string(b) {
	case "NaN", "Infinity", "-Infinity":
		return true
	case "":
		return false
	}
	digits := false
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E':
		default:
			return false
		}
	}
	return digits
}
