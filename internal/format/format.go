// Package format turns decoded changes into the records pg2kinesis
// publishes: CSV and CSVPayload exactly as the original pg2kinesis wrote
// them, its full-change payload, and our JSON format. docs/formats.md is the
// contract; the pipeline's golden files (internal/pipeline/testdata) pin it
// byte for byte.
package format

import (
	"fmt"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// Formatter appends one change's record to a buffer.
type Formatter interface {
	// Append appends the record of ev for table t to dst and returns the
	// extended buffer. ev is a KindChange event; t is ev.Table, or one of
	// ev.Truncated for a truncate. key names t's primary-key columns in
	// key order, nil when t has none (only full change publishes such
	// tables). Append does not retain ev or dst.
	Append(dst []byte, ev *decode.Event, t decode.Table, key []string) []byte
}

// Name is a record format, a --message-formatter value.
type Name string

const (
	CSVPayload Name = "CSVPayload" // the original's default
	CSV        Name = "CSV"
	JSON       Name = "JSON"
)

// Names are the record formats, in the order --help lists them.
var Names = []Name{CSVPayload, CSV, JSON}

// PartitionKey is what a record's Kinesis partition key is made of, a
// --partition-key value.
type PartitionKey string

const (
	ByXID   PartitionKey = "xid"   // the transaction: the original's
	ByTable PartitionKey = "table" // schema.table
	ByPK    PartitionKey = "pk"    // schema.table:key, each row's changes in order on one shard
	ByConst PartitionKey = "const" // one shard for everything
)

// PartitionKeys are the partition key modes, in the order --help lists them.
var PartitionKeys = []PartitionKey{ByXID, ByTable, ByPK, ByConst}

// Options shape every formatter.
type Options struct {
	// Plugin decides the details the original varied by plugin: the case
	// of the operation, and whether the xid is a JSON string or number.
	Plugin decode.Plugin
	// FullChange publishes every column (CSVPayload only: JSON always
	// does, and CSV cannot).
	FullChange bool
	// BaseType names the built-in type under a domain (nil: none known),
	// so that JSON writes a domain's values as its base type's, whatever
	// the plugin (see catalog.Domains).
	BaseType func(typeName string) (string, bool)
}

// New returns the formatter with the given --message-formatter name.
func New(name Name, opts Options) (Formatter, error) {
	switch {
	case name == CSV && !opts.FullChange:
		return csvFormatter{opts}, nil
	case name == CSVPayload && opts.FullChange:
		return fullChange{opts}, nil
	case name == CSVPayload:
		return payload{opts}, nil
	case name == JSON: // the same with and without full change
		return jsonFormatter{baseType: opts.BaseType}, nil
	}
	return nil, fmt.Errorf("message formatter %q with full change %t is not available yet", name, opts.FullChange)
}

// operation is the operation as the original wrote it: as test_decoding
// prints it (INSERT), lower case as wal2json prints it (insert), and upper
// case for pgoutput, which the original never had. A snapshot's READ, which
// no plugin prints, follows its plugin's case, so that a consumer matches
// one case per stream.
func operation(p decode.Plugin, op decode.Op) string {
	if p == decode.Wal2JSON {
		return op.String()
	}
	switch op {
	case decode.Insert:
		return "INSERT"
	case decode.Update:
		return "UPDATE"
	case decode.Delete:
		return "DELETE"
	case decode.Truncate:
		return "TRUNCATE"
	case decode.Read:
		return "READ"
	}
	return op.String()
}

// carriesRow reports whether a change of op carries the row in New: an
// insert, an update, and a snapshot's read, which is the row as it is.
func carriesRow(op decode.Op) bool {
	return op == decode.Insert || op == decode.Update || op == decode.Read
}

// carriesOld reports whether a change of op may carry the old row or key in
// Old: only an update or a delete does.
func carriesOld(op decode.Op) bool {
	return op == decode.Update || op == decode.Delete
}

// keyColumns finds the values of the key columns, in key order. An update
// carries the new key in New (docs/formats.md: the new key when it changes); a
// delete only has Old; an insert and a snapshot's read only New. A column missing from New (an unchanged TOASTed key)
// is taken from Old. ok is false when a key column is in neither, as for a
// delete under REPLICA IDENTITY NOTHING.
func keyColumns(buf []*decode.Column, ev *decode.Event, key []string) (cols []*decode.Column, ok bool) {
	cols = buf[:0]
	for _, name := range key {
		c := findColumn(ev.New, name)
		if c == nil {
			c = findColumn(ev.Old, name)
		}
		if c == nil {
			return cols, false
		}
		cols = append(cols, c)
	}
	return cols, len(key) > 0
}

func findColumn(cols []decode.Column, name string) *decode.Column {
	for i := range cols {
		if cols[i].Name == name {
			return &cols[i]
		}
	}
	return nil
}

// appendKeyText appends the primary key as text: the value itself for a
// single-column key, a JSON array for a composite key (compact for CSV,
// Python-spaced inside CSVPayload's JSON).
func appendKeyText(dst []byte, cols []*decode.Column, sep string) []byte {
	if len(cols) == 1 {
		return append(dst, cols[0].Value...)
	}
	dst = append(dst, '[')
	for i, c := range cols {
		if i > 0 {
			dst = append(dst, sep...)
		}
		dst = appendPyValue(dst, c)
	}
	return append(dst, ']')
}

// KeyText is the primary key of the change to t as CSV's pkey field holds
// it before quoting: the value, or a JSON array for a composite key; empty
// when the change does not carry it.
func KeyText(ev *decode.Event, key []string) string {
	var buf [4]*decode.Column
	cols, ok := keyColumns(buf[:0], ev, key)
	if !ok {
		return ""
	}
	return string(appendKeyText(nil, cols, ","))
}
