// Package sink defines where records go. Each backend lives in a
// sub-package named for what it talks to (kinesis, stdout).
package sink

import (
	"context"

	"github.com/jackc/pglogrepl"
)

// Record is one message to publish.
type Record struct {
	// Data is the record's payload. It is only valid during Write.
	Data []byte
	// PartitionKey routes the record (Kinesis); sinks without routing ignore it.
	PartitionKey string
	// LSN is the stream position the record came from.
	LSN pglogrepl.LSN
}

// Sink delivers records in the order it is given them.
type Sink interface {
	// Write delivers r. A nil error means r is delivered for good: the
	// caller may then flush r.LSN to the replication slot. An error is
	// final for the run; the caller stops and nothing past the last
	// delivered record is flushed.
	Write(ctx context.Context, r Record) error
	// Close releases the sink's resources. Records not yet delivered by a
	// successful Write are not delivered.
	Close() error
}
