package kinesis

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// The fake's stream as a whole: its description and the limits of a call.

// recordLimit is the stream's maximum record size in bytes. Caller holds
// f.mu.
func (f *fakeKinesis) recordLimit() int {
	if f.maxRecordKiB == 0 {
		return baseRecordSize
	}
	return int(f.maxRecordKiB) << 10
}

// setMaxRecordKiB raises (or lowers) the stream's maximum record size, as
// UpdateMaxRecordSize does.
func (f *fakeKinesis) setMaxRecordKiB(kib int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maxRecordKiB = kib
}

// largestCall is the most bytes one call carried so far.
func (f *fakeKinesis) largestCall() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.biggestCall
}

// checkLimits rejects a call as Kinesis does (PutRecords API reference):
// 1 to 500 records; each with a partition key of 1 to 256 characters and
// at most the stream's maximum record size of data and key together; at
// most 5 MiB for the call, keys included, or 10 MiB on a stream whose
// records were raised past 1 MiB. Caller holds f.mu.
func (f *fakeKinesis) checkLimits(in *kinesis.PutRecordsInput) error {
	if n := len(in.Records); n < 1 || n > maxCallRecords {
		return validationError("Value at 'records' failed to satisfy constraint: Member must have length less than or equal to 500 and greater than or equal to 1 (%d records)", n)
	}
	limit := f.recordLimit()
	total := 0
	for i, r := range in.Records {
		pk := aws.ToString(r.PartitionKey)
		if len(pk) < 1 || len(pk) > 256 {
			return validationError("Value at 'records.%d.member.partitionKey' failed to satisfy constraint: Member must have length less than or equal to 256 and greater than or equal to 1 (%d)", i+1, len(pk))
		}
		if len(r.Data) > limit {
			return validationError("Value at 'records.%d.member.data' failed to satisfy constraint: Member must have length less than or equal to %d (%d)", i+1, limit, len(r.Data))
		}
		if size := len(r.Data) + len(pk); size > limit {
			return &types.InvalidArgumentException{Message: aws.String(fmt.Sprintf("Record %d: data and partition key of %d bytes exceed the %d KiB limit", i+1, size, limit>>10))}
		}
		total += len(r.Data) + len(pk)
	}
	if most := callBytes(limit); total > most {
		return &types.InvalidArgumentException{Message: aws.String(fmt.Sprintf("Records size exceeds %d MB limit (%d bytes)", most>>20, total))}
	}
	f.biggestCall = max(f.biggestCall, total)
	return nil
}

func validationError(format string, args ...any) error {
	return &smithy.GenericAPIError{Code: "ValidationException", Message: fmt.Sprintf("1 validation error detected: "+format, args...)}
}

// DescribeStreamSummary reports an active stream, with MaxRecordSizeInKiB
// only when it was set, as Kinesis leaves it out for a stream never
// raised.
func (f *fakeKinesis) DescribeStreamSummary(_ context.Context, in *kinesis.DescribeStreamSummaryInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	open := int32(0)
	for _, sh := range f.shards {
		if !sh.closed {
			open++
		}
	}
	d := &types.StreamDescriptionSummary{StreamName: in.StreamName, StreamStatus: types.StreamStatusActive, OpenShardCount: aws.Int32(open)}
	if f.maxRecordKiB != 0 {
		d.MaxRecordSizeInKiB = aws.Int32(f.maxRecordKiB)
	}
	return &kinesis.DescribeStreamSummaryOutput{StreamDescriptionSummary: d}, nil
}

func (f *fakeKinesis) CreateStream(context.Context, *kinesis.CreateStreamInput, ...func(*kinesis.Options)) (*kinesis.CreateStreamOutput, error) {
	return nil, errors.New("fakeKinesis: CreateStream is not needed by the sink")
}
