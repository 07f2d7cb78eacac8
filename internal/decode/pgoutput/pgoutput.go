// Package pgoutput decodes the messages of PostgreSQL's built-in pgoutput
// plugin (logical replication protocol versions 1 and 2) into
// decode.Events, with jackc/pglogrepl doing the wire format.
//
// The protocol is stateful: a Relation message describes a table (its
// columns, their types, its replica identity) before the first change
// that refers to it by id, and again after its schema changes; a Type
// message names a type outside pg_catalog. The Parser keeps both.
//
// With protocol 2 and streaming on, a large transaction arrives before it
// commits, in segments between Stream Start and Stream Stop, interleaved
// with other transactions. The Parser does not decode the messages of a
// segment (it returns them as KindStreamed): they may describe schema
// changes of a transaction that later aborts. The caller holds them and,
// at Stream Commit, hands them back in order to ParseStreamed.
package pgoutput

import (
	"encoding/binary"
	"fmt"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// Parser decodes pgoutput messages. Not safe for concurrent use.
type Parser struct {
	ev        decode.Event
	relations map[uint32]*relation
	types     map[uint32]described // described by Type messages
	xid       uint32               // the open transaction (Begin … Commit)
	inStream  bool                 // between Stream Start and Stream Stop
}

type relation struct {
	table decode.Table
	cols  []relColumn
	key   []string // replica identity columns when they are the key; see decode.Event.IdentityKey
}

type relColumn struct {
	name     string
	oid      uint32 // the built-in type its values are shaped by (a domain's base type)
	typ      string
	identity bool // part of the replica identity
}

// New returns a Parser that knows no relation yet.
func New() *Parser {
	return &Parser{relations: map[uint32]*relation{}, types: map[uint32]described{}}
}

// Reset forgets the relations, types and stream state, as a new
// replication session starts without them: the server describes every
// relation again before using it.
func (p *Parser) Reset() {
	clear(p.relations)
	clear(p.types)
	p.xid, p.inStream = 0, false
}

// Parse decodes one message. It returns the same *decode.Event on every
// call, valid until the next call. lsn is the message's WAL position
// (XLogData WALStart). Inside a streamed segment it returns every message
// but Stream Stop undecoded, as KindStreamed with the (sub)transaction's
// XID. Errors are *decode.ParseError.
func (p *Parser) Parse(data []byte, lsn pglogrepl.LSN) (*decode.Event, error) {
	p.ev.Reset()
	p.ev.LSN = lsn
	if len(data) == 0 {
		return nil, decode.NewParseError(decode.PGOutput, lsn, data, nil, "empty message")
	}
	if p.inStream && data[0] != byte(pglogrepl.MessageTypeStreamStop) {
		if len(data) < 5 {
			return nil, decode.NewParseError(decode.PGOutput, lsn, data, nil,
				"streamed %s message too short for its transaction id", pglogrepl.MessageType(data[0]))
		}
		p.ev.Kind, p.ev.XID = decode.KindStreamed, binary.BigEndian.Uint32(data[1:5])
		return &p.ev, nil
	}
	return p.decode(data, lsn, false)
}

// ParseStreamed decodes a message that Parse returned as KindStreamed,
// once its transaction xid has committed. The event's XID is xid (the
// top-level transaction), whichever subtransaction made the change.
func (p *Parser) ParseStreamed(data []byte, lsn pglogrepl.LSN, xid uint32) (*decode.Event, error) {
	p.ev.Reset()
	p.ev.LSN = lsn
	if len(data) == 0 {
		return nil, decode.NewParseError(decode.PGOutput, lsn, data, nil, "empty message")
	}
	ev, err := p.decode(data, lsn, true)
	if ev != nil {
		ev.XID = xid
	}
	return ev, err
}

func (p *Parser) decode(data []byte, lsn pglogrepl.LSN, inStream bool) (ev *decode.Event, err error) {
	typ := pglogrepl.MessageType(data[0])
	// pglogrepl indexes its input without checking lengths in places (tuple
	// data): a malformed message must be an error naming it, not a crash.
	defer func() {
		if r := recover(); r != nil {
			ev, err = nil, decode.NewParseError(decode.PGOutput, lsn, data, nil, "malformed %s message: %v", typ, r)
		}
	}()
	switch typ {
	case pglogrepl.MessageTypeInsert, pglogrepl.MessageTypeUpdate, pglogrepl.MessageTypeDelete:
		if err := p.row(data, inStream); err != nil {
			return nil, decode.NewParseError(decode.PGOutput, lsn, data, err, "%s message", typ)
		}
		return &p.ev, nil
	case pglogrepl.MessageTypeTruncate:
		b := data[1:]
		if inStream {
			b = skip(b, 4)
		}
		if err := checkTruncate(b); err != nil {
			return nil, decode.NewParseError(decode.PGOutput, lsn, data, err, "decode %s message", typ)
		}
	}
	msg, err := pglogrepl.ParseV2(data, inStream)
	if err != nil {
		return nil, decode.NewParseError(decode.PGOutput, lsn, data, err, "decode %s message", typ)
	}
	e := &p.ev
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		p.xid = m.Xid
		e.Kind, e.XID, e.CommitLSN, e.CommitTime = decode.KindBegin, m.Xid, m.FinalLSN, m.CommitTime
	case *pglogrepl.CommitMessage:
		e.Kind, e.XID, e.CommitLSN, e.CommitTime = decode.KindCommit, p.xid, m.CommitLSN, m.CommitTime
		p.xid = 0
	case *pglogrepl.OriginMessage:
		e.Kind = decode.KindInfo
	case *pglogrepl.RelationMessageV2:
		p.relation(&m.RelationMessage)
		e.Kind = decode.KindInfo
	case *pglogrepl.TypeMessageV2:
		p.types[m.DataType] = describe(m.Namespace, m.Name)
		e.Kind = decode.KindInfo
	case *pglogrepl.TruncateMessageV2:
		err = p.truncate(&m.TruncateMessage)
	case *pglogrepl.LogicalDecodingMessageV2:
		e.Kind, e.XID, e.MessageTransact, e.MessagePrefix = decode.KindMessage, p.xid, m.Transactional, m.Prefix
		e.MessageContent = append(e.MessageContent, m.Content...)
		if !m.Transactional {
			e.XID = 0
		}
	case *pglogrepl.StreamStartMessageV2:
		p.inStream = true
		e.Kind, e.XID, e.FirstSegment = decode.KindStreamStart, m.Xid, m.FirstSegment == 1
	case *pglogrepl.StreamStopMessageV2:
		p.inStream = false
		e.Kind = decode.KindStreamStop
	case *pglogrepl.StreamCommitMessageV2:
		e.Kind, e.XID, e.CommitLSN, e.CommitTime = decode.KindStreamCommit, m.Xid, m.CommitLSN, m.CommitTime
	case *pglogrepl.StreamAbortMessageV2:
		e.Kind, e.XID, e.SubXID = decode.KindStreamAbort, m.Xid, m.SubXid
	default:
		return nil, decode.NewParseError(decode.PGOutput, lsn, data, nil, "unexpected %s message", typ)
	}
	if err != nil {
		return nil, decode.NewParseError(decode.PGOutput, lsn, data, err, "%s message", typ)
	}
	return e, nil
}

func (p *Parser) relation(m *pglogrepl.RelationMessage) {
	r := &relation{
		table: decode.Table{Schema: m.Namespace, Name: m.RelationName, Raw: m.Namespace + "." + m.RelationName},
		cols:  make([]relColumn, len(m.Columns)),
	}
	for i, c := range m.Columns {
		oid := c.DataType
		if d, ok := p.types[oid]; ok && d.base != 0 {
			oid = d.base
		}
		r.cols[i] = relColumn{name: c.Name, oid: oid, typ: typeName(oid, c.TypeModifier, p.types), identity: c.Flags&1 != 0}
		// Under FULL every column is flagged: the flags then say nothing
		// about the key, and the catalog has to.
		if c.Flags&1 != 0 && (m.ReplicaIdentity == 'd' || m.ReplicaIdentity == 'i') {
			r.key = append(r.key, c.Name)
		}
	}
	p.relations[m.RelationID] = r
}

func (p *Parser) rel(id uint32) (*relation, error) {
	r, ok := p.relations[id]
	if !ok {
		return nil, fmt.Errorf("relation id %d was not described by a Relation message first", id)
	}
	return r, nil
}

func (p *Parser) truncate(m *pglogrepl.TruncateMessage) error {
	e := &p.ev
	e.Kind, e.Op, e.XID = decode.KindChange, decode.Truncate, p.xid
	e.Cascade, e.RestartSeqs = m.Option&1 != 0, m.Option&2 != 0
	if len(m.RelationIDs) == 0 {
		return fmt.Errorf("truncate of no relation")
	}
	for _, id := range m.RelationIDs {
		r, err := p.rel(id)
		if err != nil {
			return err
		}
		e.Truncated = append(e.Truncated, r.table)
	}
	return nil
}
