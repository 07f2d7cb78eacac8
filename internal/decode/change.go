package decode

import (
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
)

// Kind says what a plugin message is.
type Kind uint8

const (
	KindBegin   Kind = iota + 1 // a transaction starts
	KindCommit                  // the transaction ends
	KindChange                  // an insert, update, delete or truncate
	KindMessage                 // a pg_logical_emit_message message: not published
	// KindInfo describes the stream to the parser (pgoutput's relation,
	// type and origin messages): nothing to publish.
	KindInfo
	// pgoutput protocol 2 streams large transactions before they commit,
	// in segments. Their changes must be held until KindStreamCommit and
	// dropped on KindStreamAbort.
	KindStreamStart  // a segment of transaction XID begins
	KindStreamStop   // the segment ends
	KindStreamed     // a message inside a segment, of (sub)transaction XID, not yet decoded
	KindStreamCommit // transaction XID commits at CommitLSN
	KindStreamAbort  // (sub)transaction SubXID of transaction XID aborts
)

func (k Kind) String() string {
	switch k {
	case KindBegin:
		return "begin"
	case KindCommit:
		return "commit"
	case KindChange:
		return "change"
	case KindMessage:
		return "message"
	case KindInfo:
		return "info"
	case KindStreamStart:
		return "stream start"
	case KindStreamStop:
		return "stream stop"
	case KindStreamed:
		return "streamed"
	case KindStreamCommit:
		return "stream commit"
	case KindStreamAbort:
		return "stream abort"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Op is the operation of a change.
type Op uint8

const (
	Insert Op = iota + 1
	Update
	Delete
	Truncate
	// Read is a row of a snapshot: the row as it is, read from the table
	// rather than decoded from WAL, placed in the stream where it is
	// consistent with the changes around it (package snapshot).
	Read
)

func (o Op) String() string {
	switch o {
	case Insert:
		return "insert"
	case Update:
		return "update"
	case Delete:
		return "delete"
	case Truncate:
		return "truncate"
	case Read:
		return "read"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// ValueKind is how the plugin printed a value, which is how JSON carries it.
type ValueKind uint8

const (
	String ValueKind = iota // quoted text: text, uuid, timestamps, json, arrays ...
	Number                  // an unquoted number: integer, bigint, numeric, real, oid ...
	Bool                    // true or false
)

// Column is one column of a row.
type Column struct {
	Name string
	// Type is the type name as the plugin prints it: "integer",
	// "character varying" (test_decoding), "character varying(32)"
	// (wal2json, with its typmod), "integer[]".
	Type  string
	Value []byte // the value's text, unescaped; nil when Null
	Null  bool
	Kind  ValueKind
}

// Table names a table, unquoted, and as the plugin printed it.
type Table struct {
	Schema, Name string
	// Raw is schema.table as the plugin names it: test_decoding quotes
	// identifiers that need it (public."Order"); for wal2json it is
	// Schema + "." + Name.
	Raw string
}

// Event is one decoded plugin message.
//
// A Parser returns the same *Event, with slices reused, on every call: an
// Event and every byte slice in it are valid only until the next Parse.
type Event struct {
	Kind Kind
	LSN  pglogrepl.LSN // the message's WAL position (XLogData WALStart)
	XID  uint32        // the transaction's id; 0 for a non-transactional message

	// Set when the plugin says, zero otherwise: wal2json gives both on
	// begin and commit and the time on each change too; test_decoding only
	// the time, on COMMIT, with include-timestamp. The change handler copies
	// a begin's values onto the changes of its transaction that lack them.
	CommitLSN  pglogrepl.LSN
	CommitTime time.Time

	// KindStreamStart: the first segment of the transaction. KindStreamAbort:
	// the aborted subtransaction (XID itself when the whole transaction aborts).
	FirstSegment bool
	SubXID       uint32

	// KindChange:
	Op    Op
	Table Table // insert, update, delete
	// IdentityKey names the table's replica identity columns, in column
	// order, when the plugin says them (pgoutput) and they are the key:
	// REPLICA IDENTITY DEFAULT (the primary key) or USING INDEX. Nil
	// otherwise; the catalog then names the primary key.
	IdentityKey []string
	// PrimaryKey names the table's primary-key columns as of the change,
	// in column order, when the plugin says them (wal2json's include-pk);
	// KeyStated tells an empty one (a table without a primary key then)
	// from one the plugin did not say.
	PrimaryKey []string
	KeyStated  bool
	// New is the new row: insert and update.
	New []Column
	// Old is what the plugin gives of the old row: the key (REPLICA
	// IDENTITY DEFAULT or USING INDEX) or the whole row (FULL), for
	// update (when given) and delete. Empty when the plugin gave none.
	Old []Column
	// UnchangedToast names the columns of New whose value the plugin did
	// not send (an unchanged TOASTed value); they are not in New.
	UnchangedToast []string
	// Truncate: every table truncated together, and its options.
	Truncated       []Table
	RestartSeqs     bool
	Cascade         bool
	MessagePrefix   string // KindMessage
	MessageContent  []byte // KindMessage
	MessageTransact bool   // KindMessage: emitted transactionally
}

// Reset clears e for reuse, keeping the capacity of its slices.
func (e *Event) Reset() {
	*e = Event{
		New:            e.New[:0],
		Old:            e.Old[:0],
		UnchangedToast: e.UnchangedToast[:0],
		Truncated:      e.Truncated[:0],
		MessageContent: e.MessageContent[:0],
		PrimaryKey:     e.PrimaryKey[:0],
	}
}

// ParseError is a plugin message that could not be parsed. It names the
// message's LSN and quotes (the start of) the message.
type ParseError struct {
	Plugin Plugin
	LSN    pglogrepl.LSN
	Msg    string
	Data   string // the message, cut to 200 bytes
	Err    error
}

func (e *ParseError) Error() string {
	s := fmt.Sprintf("parse %s message at LSN %s: %s", e.Plugin, e.LSN, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s + fmt.Sprintf(" (message: %q)", e.Data)
}

func (e *ParseError) Unwrap() error { return e.Err }

// NewParseError builds a ParseError quoting at most 200 bytes of data.
func NewParseError(p Plugin, lsn pglogrepl.LSN, data []byte, err error, format string, args ...any) *ParseError {
	const max = 200
	d := string(data)
	if len(d) > max {
		d = d[:max] + "…"
	}
	return &ParseError{Plugin: p, LSN: lsn, Msg: fmt.Sprintf(format, args...), Data: d, Err: err}
}

// ParseLSN reads an LSN written as Postgres does ("16/B374D848") without
// allocating, unlike pglogrepl.ParseLSN, which scans with fmt.
func ParseLSN(b []byte) (pglogrepl.LSN, bool) {
	var hi, lo uint64
	slash := false
	digits := 0
	for _, c := range b {
		var d uint64
		switch {
		case c == '/' && !slash && digits > 0:
			slash, digits = true, 0
			continue
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		default:
			return 0, false
		}
		if digits++; digits > 8 {
			return 0, false
		}
		if slash {
			lo = lo<<4 | d
		} else {
			hi = hi<<4 | d
		}
	}
	if !slash || digits == 0 {
		return 0, false
	}
	return pglogrepl.LSN(hi<<32 | lo), true
}
