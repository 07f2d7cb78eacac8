// Package wal2json parses the messages of the wal2json output plugin in
// format-version 2 (one JSON object per change, so a huge transaction is
// never held whole), read with include-xids, include-timestamp and
// include-lsn and include-pk.
//
// What wal2json 2.5 prints on PostgreSQL 15, as checked against a server
// (testdata/workload.sql):
//   - B and C carry the same "lsn", the commit record's (Postgres' commit
//     LSN), and "nextlsn", the end of that record, which is also the WAL
//     position of the C message. Changes carry the commit "timestamp" too.
//   - A TOASTed column that an UPDATE left unchanged is left out of
//     "columns", with no marker. Its name is known only when "identity"
//     names it (REPLICA IDENTITY FULL), so Event.UnchangedToast is the
//     identity columns missing from the new row; with a key-only identity
//     such a column just goes missing.
//   - NaN and ±Infinity (numeric, real, double precision) print as null,
//     like SQL NULL. Only those types, integers and oid are JSON numbers:
//     a domain over integer prints as a string.
//   - TRUNCATE gives one T message per table, all at the same LSN, and
//     says nothing of RESTART IDENTITY or CASCADE.
//   - bytea prints as hex without \x; json, jsonb, arrays and every other
//     type as strings.
//   - UPDATE and DELETE of a table without a key or REPLICA IDENTITY FULL
//     print nothing (a WARNING in the server log).
//   - A non-transactional message has "xid" and "timestamp" null.
//   - "pk" (include-pk) names the primary key's columns as of the change,
//     in column order, as [{"name","type"}], [] for a table without one;
//     "identity" is the replica identity's columns: the primary key's,
//     the USING INDEX index's, or every column under FULL.
package wal2json

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

const (
	maxDepth     = 32      // of the values that are skipped
	maxInterned  = 4096    // distinct names kept before the cache starts over
	maxInternLen = 128     // longer names are not worth keeping
	maxScratch   = 1 << 20 // a larger buffer is dropped after a small message
)

// Parser decodes wal2json messages. It is not safe for concurrent use.
type Parser struct {
	ev     decode.Event
	lx     lexer
	names  map[string]string // interned names and types
	tables map[string]decode.Table
	key    []byte            // builds a key of tables
	times  decode.Timestamps // commit times
}

// New returns a Parser.
func New() *Parser {
	return &Parser{names: map[string]string{}, tables: map[string]decode.Table{}}
}

// Parse decodes one format-version 2 message; lsn is its WAL position. It
// returns the same *decode.Event on every call, which with its byte slices
// is valid until the next call. Values alias data unless unescaped.
func (p *Parser) Parse(data []byte, lsn pglogrepl.LSN) (*decode.Event, error) {
	// The columns past the new length keep Name and Type for the next
	// message to compare with, but must not keep old messages alive.
	for i := range p.ev.New {
		p.ev.New[i].Value = nil
	}
	for i := range p.ev.Old {
		p.ev.Old[i].Value = nil
	}
	p.ev.MessageContent = nil
	p.ev.Reset()
	p.ev.LSN = lsn
	if cap(p.lx.scratch) > maxScratch && len(data) < maxScratch {
		p.lx.scratch = nil
	}
	p.lx = lexer{data: data, scratch: p.lx.scratch[:0]}
	if err := p.message(); err != nil {
		return nil, decode.NewParseError(decode.Wal2JSON, lsn, data, nil, "%v", err)
	}
	return &p.ev, nil
}

// fields of a message that are checked once it is read whole.
type fields struct {
	action, schema, table         []byte
	lsn                           pglogrepl.LSN
	xid, timestamp, hasLSN        bool
	newRow, oldRow, transactional bool
}

func (p *Parser) message() error {
	l := &p.lx
	var f fields
	if err := l.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		more, err := l.next(first, '}')
		if err != nil {
			return err
		}
		if !more {
			break
		}
		k, err := l.key()
		if err != nil {
			return err
		}
		if err := p.field(k, &f); err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
	}
	if l.peek() != 0 {
		return l.errAt("text after the message")
	}
	return p.finish(&f)
}

func (p *Parser) field(k []byte, f *fields) error {
	l := &p.lx
	var err error
	switch string(k) {
	case "action":
		f.action, err = l.str()
	case "xid": // null in a non-transactional message
		if !l.word("null") {
			f.xid = true
			p.ev.XID, err = p.xid()
		}
	case "timestamp":
		if !l.word("null") {
			f.timestamp = true
			err = p.timestamp()
		}
	case "lsn":
		var v []byte
		if v, err = l.str(); err == nil {
			var ok bool
			if f.lsn, ok = decode.ParseLSN(v); !ok {
				err = fmt.Errorf("bad LSN %q", v)
			}
		}
		f.hasLSN = true
	case "schema":
		f.schema, err = l.str()
	case "table":
		f.table, err = l.str()
	case "columns":
		if f.newRow {
			return errors.New("repeated")
		}
		f.newRow = true
		p.ev.New, err = p.columns(p.ev.New)
	case "identity":
		if f.oldRow {
			return errors.New("repeated")
		}
		f.oldRow = true
		p.ev.Old, err = p.columns(p.ev.Old)
	case "pk":
		if p.ev.KeyStated {
			return errors.New("repeated")
		}
		p.ev.KeyStated = true
		p.ev.PrimaryKey, err = p.keyNames(p.ev.PrimaryKey)
	case "transactional":
		f.transactional = true
		switch {
		case l.word("true"):
			p.ev.MessageTransact = true
		case !l.word("false"):
			err = l.errAt("want true or false")
		}
	case "prefix":
		var v []byte
		v, err = l.str()
		p.ev.MessagePrefix = p.intern(v)
	case "content":
		p.ev.MessageContent, err = l.str()
	default: // nextlsn, origin, and whatever later versions add
		err = l.skip(maxDepth)
	}
	return err
}

func (p *Parser) finish(f *fields) error {
	if len(f.action) != 1 {
		return fmt.Errorf("missing or unknown action %q", f.action)
	}
	a := f.action[0]
	// The rows each action has; wal2json prints no others.
	var newRow, oldRow bool
	switch a {
	case 'I':
		newRow = true
	case 'U':
		newRow, oldRow = true, f.oldRow
	case 'D':
		oldRow = f.oldRow
	case 'B', 'C', 'M', 'T':
	default:
		return fmt.Errorf("unknown action %q", f.action)
	}
	if f.newRow != newRow || f.oldRow != oldRow {
		return fmt.Errorf("action %c with columns %t and identity %t", a, f.newRow, f.oldRow)
	}
	switch a {
	case 'B', 'C':
		if !f.xid || !f.timestamp || !f.hasLSN {
			return fmt.Errorf("action %c without xid, timestamp or lsn: is the slot read with include-xids, include-timestamp and include-lsn?", a)
		}
		// A change's own LSN is the caller's; B and C give the commit's.
		p.ev.Kind, p.ev.CommitLSN = decode.KindBegin, f.lsn
		if a == 'C' {
			p.ev.Kind = decode.KindCommit
		}
		return nil
	case 'M':
		if !f.transactional {
			return errors.New("action M without transactional")
		}
		if p.ev.MessageTransact && !f.xid {
			return errors.New("transactional action M without xid")
		}
		p.ev.Kind = decode.KindMessage
		return nil
	}
	if !f.xid {
		return fmt.Errorf("action %c without xid: is the slot read with include-xids?", a)
	}
	if f.schema == nil || f.table == nil {
		return fmt.Errorf("action %c without schema or table", a)
	}
	t := p.table(f.schema, f.table)
	p.ev.Kind = decode.KindChange
	switch a {
	case 'I':
		p.ev.Op = decode.Insert
	case 'U':
		p.ev.Op = decode.Update
		p.unchangedToast()
	case 'D':
		p.ev.Op = decode.Delete
	case 'T':
		p.ev.Op = decode.Truncate
		p.ev.Truncated = append(p.ev.Truncated, t)
		return nil // Table stays zero, as the model has it for a truncate
	}
	p.ev.Table = t
	return nil
}

// unchangedToast names the columns of the old row that the new one lacks:
// wal2json leaves a column out of "columns" only when it is an unchanged
// TOAST value. Both lists are in column order, so one pass finds them.
func (p *Parser) unchangedToast() {
	newCols := p.ev.New
	j := 0
	for _, o := range p.ev.Old {
		k := j
		for k < len(newCols) && newCols[k].Name != o.Name {
			k++
		}
		if k == len(newCols) {
			p.ev.UnchangedToast = append(p.ev.UnchangedToast, o.Name)
			continue
		}
		j = k + 1
	}
}

func (p *Parser) xid() (uint32, error) {
	v, err := p.lx.number()
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad xid %s", v)
		}
		if n = n*10 + uint64(c-'0'); n > 1<<32-1 {
			return 0, fmt.Errorf("xid %s out of range", v)
		}
	}
	return uint32(n), nil
}

// timestamp reads a commit time as Postgres prints it in the ISO style,
// with the session time zone's offset.
func (p *Parser) timestamp() error {
	v, err := p.lx.str()
	if err != nil {
		return err
	}
	// Every message of a transaction repeats it: Timestamps parses a
	// second once.
	t, err := p.times.Parse(v)
	if err != nil {
		return fmt.Errorf("bad timestamp %q", v)
	}
	p.ev.CommitTime = t
	return nil
}

// intern returns b as a string, allocating only the first time.
func (p *Parser) intern(b []byte) string {
	if s, ok := p.names[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(b) <= maxInternLen {
		if len(p.names) >= maxInterned {
			clear(p.names)
		}
		p.names[s] = s
	}
	return s
}

func (p *Parser) table(schema, name []byte) decode.Table {
	// The schema's length first keeps "a.b"+"c" apart from "a"+"b.c".
	p.key = binary.AppendUvarint(p.key[:0], uint64(len(schema)))
	p.key = append(append(p.key, schema...), name...)
	if t, ok := p.tables[string(p.key)]; ok {
		return t
	}
	t := decode.Table{Schema: string(schema), Name: string(name)}
	t.Raw = t.Schema + "." + t.Name
	if len(p.key) <= 2*maxInternLen {
		if len(p.tables) >= maxInterned {
			clear(p.tables)
		}
		p.tables[string(p.key)] = t
	}
	return t
}
