package kinesis

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
)

// A stream's maximum record size (data + partition key) is 1 MiB unless
// it was raised (MaxRecordSizeInKiB, 1024 to 10240; DescribeStreamSummary
// reports none for a stream never raised, and kinesalite never reports
// one). The sink reads it when it starts and after a reshard.
const (
	baseRecordSize = 1 << 20  // the default, and the least a stream takes
	topRecordSize  = 10 << 20 // the most Kinesis lets a stream take
)

// Bytes of one PutRecords call, keys included. The SDK's PutRecords doc
// (aws-sdk-go-v2/service/kinesis, api_op_PutRecords.go) says "Each record
// in the request can be as large as 10 MiB, up to a limit of 10 MiB for
// the entire request, including partition keys", which came with large
// records; every Kinesis-protocol server
// that predates them (kinesalite included) enforces the former 5 MiB, and
// so may Kinesis for a stream whose records were never raised: such a
// stream gets 5 MiB calls, a raised one 10 MiB.
const (
	baseCallBytes  = 5 << 20
	topCallBytes   = 10 << 20
	maxCallRecords = 500
)

// aggregateTarget is where an aggregate of several user records is sealed,
// whatever the stream's maximum: a larger aggregate would not carry more
// a second (a shard still takes 1 MiB a second), and Kinesis takes
// records over 1 MiB as bursts above the shard's rate, meant to be
// occasional ("Handle large records" in its developer guide). Only a user
// record too large for it goes out larger, in an aggregate of its own.
const aggregateTarget = baseRecordSize

// callBytes is what one PutRecords call may carry to a stream whose
// records may be maxRecord bytes.
func callBytes(maxRecord int) int {
	if maxRecord > baseRecordSize {
		return topCallBytes
	}
	return baseCallBytes
}

// maxRecordOf is the maximum record size in bytes that d reports. A figure
// outside Kinesis' range is not Kinesis': below it, a record near 1 MiB
// would not take Put's exact check (see Put); above it, one call could
// not carry the record.
func maxRecordOf(d *types.StreamDescriptionSummary) int {
	if d == nil || d.MaxRecordSizeInKiB == nil {
		return baseRecordSize
	}
	return min(max(int(*d.MaxRecordSizeInKiB)<<10, baseRecordSize), topRecordSize)
}

// describeInput names the stream for DescribeStreamSummary: the sink's only
// place that builds it.
func (s *Sink) describeInput() *kinesis.DescribeStreamSummaryInput {
	return &kinesis.DescribeStreamSummaryInput{StreamName: s.cfg.Stream.NameParam(), StreamARN: s.cfg.Stream.ARNParam()}
}

// readMaxRecord asks Kinesis for the stream's maximum record size.
func (s *Sink) readMaxRecord(ctx context.Context) (int, error) {
	out, err := s.cfg.API.DescribeStreamSummary(ctx, s.describeInput())
	if err != nil {
		return 0, fmt.Errorf("read the maximum record size of Kinesis stream %q: %w", s.cfg.Stream, err)
	}
	return maxRecordOf(out.StreamDescriptionSummary), nil
}

// maxUserRecord is the largest user record (data + key) that fits alone
// in one Kinesis record of the stream.
func (s *Sink) maxUserRecord(pk string) int {
	limit := int(s.maxRecord.Load())
	if !s.cfg.Aggregate {
		return limit
	}
	return limit - aggregateOverhead(pk, limit)
}

// checkSize returns an *sink.OversizeError when a user record of size
// bytes with key pk cannot fit in one Kinesis record of the stream.
func (s *Sink) checkSize(pk string, size int) error {
	if most := s.maxUserRecord(pk); size > most {
		return &sink.OversizeError{Size: size, Max: most, Stream: s.cfg.Stream.Name}
	}
	return nil
}
