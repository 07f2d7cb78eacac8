// Package sink defines where records go. Each backend lives in a
// sub-package named for what it talks to (kinesis, stdout).
package sink

import (
	"context"
	"fmt"
)

// Kind is where records go, a --sink value.
type Kind string

const (
	Kinesis Kind = "kinesis"
	Stdout  Kind = "stdout" // for debugging
)

// Kinds are the sinks, in the order --help lists them.
var Kinds = []Kind{Kinesis, Stdout}

// Oversize is what to do with a change larger than the sink can send, an
// --oversize value.
type Oversize string

const (
	OversizeFail Oversize = "fail" // stop with an error naming the change
	OversizeSkip Oversize = "skip" // log and count it, and go on
)

// OversizePolicies are the --oversize values, in the order --help lists them.
var OversizePolicies = []Oversize{OversizeFail, OversizeSkip}

// StreamMode is the capacity mode of a Kinesis stream that --create-stream
// creates, a --stream-mode value.
type StreamMode string

const (
	Provisioned StreamMode = "provisioned" // --shard-count shards, resharded by hand
	OnDemand    StreamMode = "on-demand"   // AWS splits and merges shards with the load
)

// StreamModes are the --stream-mode values, in the order --help lists them.
var StreamModes = []StreamMode{Provisioned, OnDemand}

// Record is one change to publish.
type Record struct {
	// Data is the formatted change. The sink copies it: the caller may
	// reuse the buffer once Put returns.
	Data []byte
	// PartitionKey routes the record (Kinesis); sinks without routing ignore it.
	PartitionKey string
	// Stream is the Kinesis stream of the record's table when tables go
	// to streams of their own (kinesis.Streams); empty otherwise, and
	// ignored by the sinks of one destination.
	Stream string
	// Seq numbers the record for acknowledgement (see checkpoint.Tracker).
	Seq uint64
}

// AckFunc is called once for every batch of records delivered for good
// together (a Kinesis record, which is an aggregate of them or one plain
// record; a flush of the stdout sink), with their sequence numbers,
// possibly from another goroutine and possibly before Put returns. seqs
// is valid only during the call. One call per batch, not per record: the
// checkpoint takes its lock once for all of them.
type AckFunc func(seqs []uint64)

// Sink delivers records. Records with the same partition key are delivered
// in the order they were Put, even across retries; nothing is acknowledged
// that was not delivered.
type Sink interface {
	// Put hands r over. It may return before r is delivered and blocks
	// while the sink's buffer is full. An error is final for the run:
	// the caller stops, and nothing past the last acknowledged record is
	// flushed. A record too large for the sink returns an *OversizeError.
	Put(ctx context.Context, r Record) error
	// Run does the sink's background work (sending, retrying) until ctx
	// ends or a fatal error, which it returns. Synchronous sinks return
	// nil when ctx ends.
	Run(ctx context.Context) error
	// Drain sends whatever is buffered without waiting for the flush
	// interval and waits until everything Put so far is acknowledged or
	// ctx ends. It is called at shutdown, after the last Put.
	Drain(ctx context.Context) error
	// Close releases the sink's resources.
	Close() error
}

// OversizeError is a record larger than the sink can ever send.
type OversizeError struct {
	Size, Max int
	// Stream is the Kinesis stream whose limit it is ("" for other
	// sinks): with a stream per table, limits differ by stream.
	Stream string
}

func (e *OversizeError) Error() string {
	msg := fmt.Sprintf("record of %d bytes (with its partition key) is over the %d-byte limit", e.Size, e.Max)
	if e.Stream != "" {
		msg += fmt.Sprintf(" of Kinesis stream %q (a stream's maximum record size can be raised up to 10 MiB with aws kinesis update-max-record-size; restart pg2kinesis after)", e.Stream)
	}
	return msg
}
