// Package wal2json parses wal2json format-version 2 messages (one JSON
// object per change, read with include-xids, include-timestamp and
// include-lsn) into decode.Events, without holding a transaction.
//
// What wal2json 2.5 does, as checked against PostgreSQL 15: an unchanged
// TOASTed column is left out of "columns" (its name is not given, so
// Event.UnchangedToast stays empty); NaN and infinite floats are printed as
// null; a TRUNCATE gives one "T" message per table, without its options;
// json and jsonb values are strings.
package wal2json

import (
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// maxDepth bounds the nesting of values that are skipped.
const maxDepth = 32

// Parser decodes wal2json messages. Not safe for concurrent use.
type Parser struct {
	ev      decode.Event
	msgLSN  pglogrepl.LSN // the message's "lsn"
	lastTS  []byte        // every message of a transaction repeats its commit time:
	lastT   time.Time     // parse it once
	scratch []byte
	intern  map[string]string
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
	p.msgLSN = 0
	if cap(p.scratch) < len(data) {
		p.scratch = make([]byte, 0, len(data))
	}
	p.scratch = p.scratch[:0]
	l := &lexer{data: data, scratch: &p.scratch}
	if err := p.object(l); err != nil {
		return nil, decode.NewParseError(decode.Wal2JSON, lsn, data, nil, "%v", err)
	}
	return &p.ev, nil
}

func (p *Parser) object(l *lexer) error {
	var action, schema, table []byte
	if err := l.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		ok, err := l.more(first, '}')
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		key, err := l.str()
		if err != nil {
			return err
		}
		if err := l.expect(':'); err != nil {
			return err
		}
		switch string(key) {
		case "action":
			action, err = l.str()
		case "xid":
			err = p.xid(l)
		case "timestamp":
			err = p.timestamp(l)
		case "lsn":
			err = p.lsn(l)
		case "schema":
			schema, err = l.str()
		case "table":
			table, err = l.str()
		case "columns":
			err = p.columns(l, &p.ev.New)
		case "identity":
			err = p.columns(l, &p.ev.Old)
		case "transactional":
			var v []byte
			v, err = l.literal()
			p.ev.MessageTransact = string(v) == "true"
		case "prefix":
			var v []byte
			v, err = l.str()
			p.ev.MessagePrefix = p.str(v)
		case "content":
			var v []byte
			v, err = l.str()
			p.ev.MessageContent = append(p.ev.MessageContent, v...)
		default: // nextlsn, pk, and whatever later versions add
			err = l.skip(maxDepth)
		}
		if err != nil {
			return err
		}
	}
	if l.peek() != 0 {
		return l.fail("unexpected text after the object")
	}
	return p.finish(l, action, schema, table)
}

func (p *Parser) finish(l *lexer, action, schema, table []byte) error {
	if len(action) != 1 {
		return l.fail("missing or unknown action %q", action)
	}
	t := decode.Table{Schema: p.str(schema), Name: p.str(table)}
	var raw [128]byte
	t.Raw = p.str(append(append(append(raw[:0], schema...), '.'), table...))
	switch action[0] {
	case 'B':
		p.ev.Kind, p.ev.CommitLSN = decode.KindBegin, p.msgLSN
		return nil
	case 'C':
		p.ev.Kind, p.ev.CommitLSN = decode.KindCommit, p.msgLSN
		return nil
	case 'M':
		p.ev.Kind = decode.KindMessage
		return nil
	case 'I', 'U', 'D', 'T':
	default:
		return l.fail("unknown action %q", action)
	}
	if len(schema) == 0 || len(table) == 0 {
		return l.fail("change without schema or table")
	}
	p.ev.Kind = decode.KindChange
	switch action[0] {
	case 'I':
		p.ev.Op = decode.Insert
	case 'U':
		p.ev.Op = decode.Update
	case 'D':
		p.ev.Op = decode.Delete
	case 'T':
		p.ev.Op = decode.Truncate
		p.ev.Truncated = append(p.ev.Truncated, t)
	}
	p.ev.Table = t
	return nil
}

func (p *Parser) xid(l *lexer) error {
	v, err := l.literal()
	if err != nil {
		return err
	}
	n, err := strconv.ParseUint(string(v), 10, 32)
	if err != nil {
		return l.fail("bad xid %q", v)
	}
	p.ev.XID = uint32(n)
	return nil
}

// timestamp and lsn are the commit's on B and C messages; on changes they
// repeat the commit time and give the change's own LSN, which ev.LSN holds.
func (p *Parser) timestamp(l *lexer) error {
	v, err := l.str()
	if err != nil {
		return err
	}
	if string(v) == string(p.lastTS) {
		p.ev.CommitTime = p.lastT
		return nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999-07", "2006-01-02 15:04:05.999999-07:00"} {
		if t, err := time.Parse(layout, string(v)); err == nil {
			p.ev.CommitTime = t
			p.lastTS, p.lastT = append(p.lastTS[:0], v...), t
			return nil
		}
	}
	return l.fail("bad timestamp %q", v)
}

func (p *Parser) lsn(l *lexer) error {
	v, err := l.str()
	if err != nil {
		return err
	}
	lsn, ok := decode.ParseLSN(v)
	if !ok {
		return l.fail("bad lsn %q", v)
	}
	p.msgLSN = lsn
	return nil
}

func (p *Parser) columns(l *lexer, cols *[]decode.Column) error {
	if err := l.expect('['); err != nil {
		return err
	}
	for first := true; ; first = false {
		ok, err := l.more(first, ']')
		if err != nil || !ok {
			return err
		}
		c, err := p.column(l)
		if err != nil {
			return err
		}
		*cols = append(*cols, c)
	}
}

func (p *Parser) column(l *lexer) (decode.Column, error) {
	var c decode.Column
	if err := l.expect('{'); err != nil {
		return c, err
	}
	seen := false
	for first := true; ; first = false {
		ok, err := l.more(first, '}')
		if err != nil {
			return c, err
		}
		if !ok {
			break
		}
		key, err := l.str()
		if err != nil {
			return c, err
		}
		if err := l.expect(':'); err != nil {
			return c, err
		}
		var v []byte
		switch string(key) {
		case "name":
			v, err = l.str()
			c.Name = p.str(v)
		case "type":
			v, err = l.str()
			c.Type = p.str(v)
		case "value":
			seen = true
			err = p.value(l, &c)
		default:
			err = l.skip(maxDepth)
		}
		if err != nil {
			return c, err
		}
	}
	if c.Name == "" || !seen {
		return c, l.fail("column without name or value")
	}
	return c, nil
}

func (p *Parser) value(l *lexer, c *decode.Column) error {
	if l.peek() == '"' {
		v, err := l.str()
		c.Value, c.Kind = v, decode.String
		return err
	}
	v, err := l.literal()
	if err != nil {
		return err
	}
	switch string(v) {
	case "null":
		c.Null = true
	case "true", "false":
		c.Value, c.Kind = v, decode.Bool
	default:
		if c := v[0]; c != '-' && (c < '0' || c > '9') {
			return l.fail("bad value %q", v)
		}
		c.Value, c.Kind = v, decode.Number
	}
	return nil
}

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
