// Package testdecoding parses the output of PostgreSQL's test_decoding
// plugin, as PostgreSQL 15 prints it with its default options, into
// decode.Events. The grammar is the one of contrib/test_decoding:
//
//	BEGIN 1234
//	table public.items: INSERT: id[integer]:1 name[text]:'it''s'
//	table public.items: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 name[text]:'x'
//	table public.items: DELETE: id[integer]:2
//	table public.a, public.b: TRUNCATE: restart_seqs cascade
//	message: transactional: 1 prefix: p, sz: 5 content:hello
//	COMMIT 1234
//
// The forms of the options include-xids=0 ("BEGIN", "COMMIT") and
// include-timestamp=1 ("COMMIT 1234 (at 2026-11-24 15:17:20.043531+00)")
// are read too. Streaming and two-phase output are not.
package testdecoding

import (
	"bytes"
	"errors"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

const (
	// maxNames bounds the interned names: a schema with more distinct
	// tables, columns and types than this still parses, it just allocates.
	maxNames = 4096
	// maxKeep is the most buffer capacity kept from one message to the
	// next, so one huge value does not pin its memory for the process's life.
	maxKeep = 1 << 20
)

// Parser decodes test_decoding messages (PostgreSQL 15, default options:
// xids included, no timestamps). It remembers the xid of the open
// transaction, since change lines do not carry it. Not safe for concurrent
// use.
type Parser struct {
	ev      decode.Event
	xid     uint32            // of the open transaction, 0 outside one
	scratch []byte            // unescaped values of the current message
	names   map[string]string // interned identifiers, type names, prefixes
	last    decode.Table      // the previous change's table: rows come in runs
	times   decode.Timestamps // commit times
}

// New returns a Parser.
func New() *Parser {
	return &Parser{names: make(map[string]string)}
}

// Parse decodes one message. It returns the same *decode.Event on every
// call; the event and its byte slices are valid until the next call, and
// column values may alias data. lsn is the message's WAL position
// (XLogData WALStart); it goes to ev.LSN and to errors. Errors are
// *decode.ParseError.
func (p *Parser) Parse(data []byte, lsn pglogrepl.LSN) (*decode.Event, error) {
	if cap(p.scratch) > maxKeep {
		p.scratch = nil
	}
	if cap(p.ev.MessageContent) > maxKeep {
		p.ev.MessageContent = nil
	}
	p.ev.Reset()
	p.ev.LSN = lsn
	p.scratch = p.scratch[:0]
	s := scanner{data: data}
	var err error
	switch {
	case s.word("BEGIN"):
		err = p.begin(&s)
	case s.word("COMMIT"):
		err = p.commit(&s)
	case s.lit("table "):
		err = p.change(&s)
	case s.lit("message: "):
		err = p.message(&s)
	default:
		err = errors.New("unknown message: want BEGIN, COMMIT, table or message")
	}
	if err != nil {
		if hint := unsupported(data); hint != "" {
			return nil, decode.NewParseError(decode.TestDecoding, lsn, data, nil, "%s", hint)
		}
		return nil, decode.NewParseError(decode.TestDecoding, lsn, data, nil, "%v", err)
	}
	return &p.ev, nil
}

// unsupported explains lines that only plugin options we never set produce.
func unsupported(data []byte) string {
	for _, pre := range []string{"PREPARE TRANSACTION", "COMMIT PREPARED", "ROLLBACK PREPARED"} {
		if bytes.HasPrefix(data, []byte(pre)) {
			return "two-phase output is not supported: use a slot created without two_phase"
		}
	}
	for _, pre := range []string{"opening a streamed", "closing a streamed", "aborting streamed", "preparing streamed", "committing streamed", "streaming "} {
		if bytes.HasPrefix(data, []byte(pre)) {
			return "streaming output is not supported: do not set stream-changes"
		}
	}
	return ""
}

func (p *Parser) begin(s *scanner) error {
	p.ev.Kind = decode.KindBegin
	var xid uint32
	if s.lit(" ") {
		var err error
		if xid, err = s.uint32("xid"); err != nil {
			return err
		}
	}
	if err := s.end(); err != nil {
		return err
	}
	p.xid = xid
	p.ev.XID = xid
	return nil
}

func (p *Parser) commit(s *scanner) error {
	p.ev.Kind = decode.KindCommit
	xid := p.xid // include-xids=0 prints none
	if r := s.rest(); len(r) > 1 && r[0] == ' ' && r[1] != '(' {
		s.pos++
		var err error
		if xid, err = s.uint32("xid"); err != nil {
			return err
		}
	}
	if !s.done() {
		// include-timestamp: " (at 2026-11-24 15:17:20.043531+00)".
		r := s.rest()
		if !s.lit(" (at ") || r[len(r)-1] != ')' {
			return s.fail("want the end of the line or (at TIMESTAMP) after the xid")
		}
		// timestamptz_to_str's ISO form
		t, err := p.times.Parse(s.rest()[:len(s.rest())-1])
		if err != nil {
			return s.fail("commit " + err.Error())
		}
		p.ev.CommitTime = t
	}
	p.xid, p.ev.XID = 0, xid
	return nil
}

func (p *Parser) message(s *scanner) error {
	p.ev.Kind = decode.KindMessage
	if !s.lit("transactional: ") {
		return s.fail("want transactional:")
	}
	switch {
	case s.lit("1"):
		p.ev.MessageTransact = true
		p.ev.XID = p.xid
	case s.lit("0"):
		// Non-transactional messages are sent at once, outside any
		// transaction's BEGIN and COMMIT: p.xid is not theirs.
	default:
		return s.fail("want transactional: 0 or 1")
	}
	if !s.lit(" prefix: ") {
		return s.fail("want prefix:")
	}
	// Prefix and content are printed raw, so either may hold ", sz: N
	// content:". The plugin's own is the first whose N is the length of
	// what follows it.
	rest := s.rest()
	for from := 0; ; {
		i := bytes.Index(rest[from:], []byte(", sz: "))
		if i < 0 {
			return s.fail("want , sz: N content: with N the length of the content")
		}
		i += from
		from = i + 1
		t := scanner{data: rest, pos: i + len(", sz: ")}
		n, err := t.uint32("sz")
		if err != nil || !t.lit(" content:") || uint64(len(rest)-t.pos) != uint64(n) {
			continue
		}
		p.ev.MessagePrefix = p.str(rest[:i])
		p.ev.MessageContent = append(p.ev.MessageContent, rest[t.pos:]...)
		return nil
	}
}

func (p *Parser) change(s *scanner) error {
	p.ev.Kind = decode.KindChange
	p.ev.XID = p.xid
	t, err := p.tableName(s)
	if err != nil {
		return err
	}
	if bytes.HasPrefix(s.rest(), []byte(", ")) || bytes.HasPrefix(s.rest(), []byte(": TRUNCATE:")) {
		return p.truncate(s, t)
	}
	p.ev.Table = t
	if !s.lit(": ") {
		return s.fail("want : after the table name")
	}
	switch {
	case s.lit("INSERT:"):
		p.ev.Op = decode.Insert
		return p.tuple(s, &p.ev.New, "new tuple", "")
	case s.lit("UPDATE:"):
		p.ev.Op = decode.Update
		if s.lit(" old-key:") {
			if err := p.tuple(s, &p.ev.Old, "old key", " new-tuple:"); err != nil {
				return err
			}
			if !s.lit(" new-tuple:") {
				return s.fail("want new-tuple: after the old key")
			}
		}
		return p.tuple(s, &p.ev.New, "new tuple", "")
	case s.lit("DELETE:"):
		p.ev.Op = decode.Delete
		return p.tuple(s, &p.ev.Old, "old key", "")
	}
	return s.fail("unknown operation: want INSERT:, UPDATE:, DELETE: or TRUNCATE:")
}

// truncate reads the rest of "table a, b: TRUNCATE: flags" once the first
// table is read. ev.Table stays zero: a truncate names several.
func (p *Parser) truncate(s *scanner, first decode.Table) error {
	p.ev.Op = decode.Truncate
	p.ev.Truncated = append(p.ev.Truncated, first)
	for s.lit(", ") {
		t, err := p.tableName(s)
		if err != nil {
			return err
		}
		p.ev.Truncated = append(p.ev.Truncated, t)
	}
	if !s.lit(": TRUNCATE:") {
		return s.fail("want , or : TRUNCATE: after a table name")
	}
	if s.lit(" (no-flags)") {
		return s.end()
	}
	p.ev.RestartSeqs = s.lit(" restart_seqs")
	p.ev.Cascade = s.lit(" cascade")
	if !p.ev.RestartSeqs && !p.ev.Cascade {
		return s.fail("want (no-flags), restart_seqs or cascade after TRUNCATE:")
	}
	return s.end()
}

// tableName reads schema.table as quote_qualified_identifier prints it.
func (p *Parser) tableName(s *scanner) (decode.Table, error) {
	// The previous table again is the common case; a prefix match is
	// enough since the name ends where a ':' or ',' follows it.
	if r := s.rest(); len(p.last.Raw) > 0 && len(r) > len(p.last.Raw) &&
		string(r[:len(p.last.Raw)]) == p.last.Raw && (r[len(p.last.Raw)] == ':' || r[len(p.last.Raw)] == ',') {
		s.pos += len(p.last.Raw)
		return p.last, nil
	}
	start := s.pos
	schema, err := p.ident(s, "schema name", ".:, ")
	if err != nil {
		return decode.Table{}, err
	}
	if !s.lit(".") {
		return decode.Table{}, s.fail("want . after the schema name")
	}
	name, err := p.ident(s, "table name", ":, ")
	if err != nil {
		return decode.Table{}, err
	}
	p.last = decode.Table{Schema: schema, Name: name, Raw: p.str(s.data[start:s.pos])}
	return p.last, nil
}

// str interns b: names and types repeat on every row, and a map lookup
// keyed by string(b) does not allocate.
func (p *Parser) str(b []byte) string {
	if v, ok := p.names[string(b)]; ok {
		return v
	}
	if len(p.names) >= maxNames {
		clear(p.names)
	}
	v := string(b)
	p.names[v] = v
	return v
}
