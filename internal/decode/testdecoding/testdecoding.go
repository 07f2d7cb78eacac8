// Package testdecoding parses the output of PostgreSQL's test_decoding
// plugin (as PostgreSQL 15 prints it with its default options) into
// decode.Events. The grammar is the one of contrib/test_decoding:
//
//	BEGIN 1234
//	table public.items: INSERT: id[integer]:1 name[text]:'it''s'
//	table public.items: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 name[text]:'x'
//	table public.items: DELETE: id[integer]:2
//	table public.a, public.b: TRUNCATE: restart_seqs cascade
//	message: transactional: 1 prefix: p, sz: 5 content:hello
//	COMMIT 1234
package testdecoding

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// Parser decodes test_decoding messages. It remembers the xid of the open
// transaction, since change lines do not carry it. Not safe for concurrent
// use.
type Parser struct {
	ev      decode.Event
	xid     uint32
	scratch []byte            // unescaped values; sized per message so it never moves
	intern  map[string]string // column names and type names
}

// New returns a Parser.
func New() *Parser {
	return &Parser{intern: map[string]string{}}
}

// Parse decodes one message. It returns the same *decode.Event on every
// call; the event and its byte slices are valid until the next call.
func (p *Parser) Parse(data []byte, lsn pglogrepl.LSN) (*decode.Event, error) {
	p.ev.Reset()
	p.ev.LSN = lsn
	if cap(p.scratch) < len(data) {
		p.scratch = make([]byte, 0, len(data))
	}
	p.scratch = p.scratch[:0]
	s := &scanner{data: data}
	var err error
	switch {
	case s.consume("BEGIN"):
		err = p.begin(s)
	case s.consume("COMMIT"):
		err = p.commit(s)
	case s.consume("table "):
		err = p.change(s)
	case s.consume("message: "):
		err = p.message(s)
	default:
		err = s.fail("unknown message: want BEGIN, COMMIT, table or message")
	}
	if err != nil {
		return nil, decode.NewParseError(decode.TestDecoding, lsn, data, nil, "%v", err)
	}
	p.ev.XID = p.xid
	return &p.ev, nil
}

func (p *Parser) begin(s *scanner) error {
	p.ev.Kind = decode.KindBegin
	p.xid = 0
	if s.done() {
		return nil
	}
	if !s.consume(" ") {
		return s.fail("want a space and the xid after BEGIN")
	}
	xid, err := s.uint32()
	if err != nil {
		return err
	}
	p.xid = xid
	return s.end()
}

func (p *Parser) commit(s *scanner) error {
	p.ev.Kind = decode.KindCommit
	if s.done() {
		return nil
	}
	if !s.consume(" ") {
		return s.fail("want a space and the xid after COMMIT")
	}
	if s.peek() != '(' {
		xid, err := s.uint32()
		if err != nil {
			return err
		}
		p.xid = xid
		if s.done() {
			return nil
		}
		if !s.consume(" ") {
			return s.fail("want the end of the line after the xid")
		}
	}
	// include-timestamp adds " (at 2026-11-24 15:17:20.043531+00)".
	if !s.consume("(at ") || !bytes.HasSuffix(s.rest(), []byte(")")) {
		return s.fail("want (at TIMESTAMP)")
	}
	ts := string(s.rest()[:len(s.rest())-1])
	for _, layout := range []string{"2006-01-02 15:04:05.999999-07", "2006-01-02 15:04:05.999999-07:00", "2006-01-02 15:04:05.999999-07:00:00"} {
		if t, err := time.Parse(layout, ts); err == nil {
			p.ev.CommitTime = t
			return nil
		}
	}
	return s.fail(fmt.Sprintf("unparsable commit time %q", ts))
}

func (p *Parser) message(s *scanner) error {
	p.ev.Kind = decode.KindMessage
	if !s.consume("transactional: ") {
		return s.fail("want transactional:")
	}
	switch {
	case s.consume("1"):
		p.ev.MessageTransact = true
	case s.consume("0"):
	default:
		return s.fail("want transactional: 0 or 1")
	}
	if !s.consume(" prefix: ") {
		return s.fail("want prefix:")
	}
	// Prefix and content are printed raw and may contain ", sz: "; the
	// split is the one whose sz matches the length of what follows.
	rest := s.rest()
	for off := 0; ; {
		i := bytes.Index(rest[off:], []byte(", sz: "))
		if i < 0 {
			return s.fail("want , sz: N content: with N the content's length")
		}
		off += i
		t := &scanner{data: rest, pos: off + len(", sz: ")}
		if n, err := t.uint32(); err == nil && t.consume(" content:") && len(t.rest()) == int(n) {
			p.ev.MessagePrefix = string(rest[:off])
			s.pos += t.pos
			break
		}
		off++
	}
	p.ev.MessageContent = append(p.ev.MessageContent, s.rest()...)
	return nil
}

func (p *Parser) change(s *scanner) error {
	p.ev.Kind = decode.KindChange
	start := s.pos
	t, err := s.qualifiedName()
	if err != nil {
		return err
	}
	if s.consume(", ") || bytes.HasPrefix(s.rest(), []byte(": TRUNCATE:")) {
		s.pos = start
		return p.truncate(s)
	}
	p.ev.Table = p.table(t, s.data[start:s.pos])
	if !s.consume(": ") {
		return s.fail("want : after the table name")
	}
	switch {
	case s.consume("INSERT:"):
		p.ev.Op = decode.Insert
		return p.tuple(s, &p.ev.New, "")
	case s.consume("UPDATE:"):
		p.ev.Op = decode.Update
		if s.consume(" old-key:") {
			if err := p.tuple(s, &p.ev.Old, " new-tuple:"); err != nil {
				return err
			}
			if !s.consume(" new-tuple:") {
				return s.fail("want new-tuple: after old-key:")
			}
		}
		return p.tuple(s, &p.ev.New, "")
	case s.consume("DELETE:"):
		p.ev.Op = decode.Delete
		return p.tuple(s, &p.ev.Old, "")
	}
	return s.fail("unknown operation: want INSERT, UPDATE, DELETE or TRUNCATE")
}

func (p *Parser) truncate(s *scanner) error {
	p.ev.Op = decode.Truncate
	for {
		start := s.pos
		t, err := s.qualifiedName()
		if err != nil {
			return err
		}
		p.ev.Truncated = append(p.ev.Truncated, p.table(t, s.data[start:s.pos]))
		if !s.consume(", ") {
			break
		}
	}
	if !s.consume(": TRUNCATE:") {
		return s.fail("want : TRUNCATE: after the table names")
	}
	if s.consume(" (no-flags)") {
		return s.end()
	}
	if s.consume(" restart_seqs") {
		p.ev.RestartSeqs = true
	}
	if s.consume(" cascade") {
		p.ev.Cascade = true
	}
	if !p.ev.RestartSeqs && !p.ev.Cascade {
		return s.fail("want (no-flags), restart_seqs or cascade")
	}
	return s.end()
}

func (p *Parser) table(t [2][]byte, raw []byte) decode.Table {
	return decode.Table{Schema: p.str(t[0]), Name: p.str(t[1]), Raw: p.str(raw)}
}

// tuple parses " name[type]:value" columns into cols until the end of the
// line or stop. A lone " (no-tuple-data)" means the plugin had no row.
func (p *Parser) tuple(s *scanner, cols *[]decode.Column, stop string) error {
	if s.consume(" (no-tuple-data)") {
		if stop == "" {
			return s.end()
		}
		return nil
	}
	for !s.done() && (stop == "" || !bytes.HasPrefix(s.rest(), []byte(stop))) {
		if !s.consume(" ") {
			return s.fail("want a space before the next column")
		}
		if err := p.column(s, cols); err != nil {
			return err
		}
	}
	return nil
}

func (p *Parser) column(s *scanner, cols *[]decode.Column) error {
	name, err := s.ident('[')
	if err != nil {
		return err
	}
	if !s.consume("[") {
		return s.fail("want [type] after the column name")
	}
	end := bytes.Index(s.rest(), []byte("]:"))
	if end < 0 {
		return s.fail("want ]: after the column type")
	}
	typ := s.rest()[:end]
	if len(typ) == 0 {
		return s.fail("empty column type")
	}
	s.pos += end + 2
	c := decode.Column{Name: p.str(name), Type: p.str(typ)}
	switch {
	case s.consumeWord("null"):
		c.Null = true
	case s.consumeWord("unchanged-toast-datum"):
		p.ev.UnchangedToast = append(p.ev.UnchangedToast, c.Name)
		return nil
	case s.peek() == '\'':
		v, err := s.quoted(&p.scratch)
		if err != nil {
			return err
		}
		c.Value = v
	case s.consume("B'"):
		i := bytes.IndexByte(s.rest(), '\'')
		if i < 0 {
			return s.fail("unterminated bit string")
		}
		c.Value = s.rest()[:i]
		s.pos += i + 1
	default:
		v := s.word()
		if len(v) == 0 {
			return s.fail("want a value after the column type")
		}
		c.Value, c.Kind = v, decode.Number
		if string(v) == "true" || string(v) == "false" {
			c.Kind = decode.Bool
		}
	}
	if !s.done() && s.peek() != ' ' {
		return s.fail("want a space or the end of the line after the value")
	}
	*cols = append(*cols, c)
	return nil
}

// str interns b: names and types repeat on every row.
func (p *Parser) str(b []byte) string {
	if v, ok := p.intern[string(b)]; ok {
		return v
	}
	if len(p.intern) > 10000 {
		clear(p.intern)
	}
	v := string(b)
	p.intern[v] = v
	return v
}

func parseUint32(b []byte) (uint32, error) {
	n, err := strconv.ParseUint(string(b), 10, 32)
	return uint32(n), err
}
