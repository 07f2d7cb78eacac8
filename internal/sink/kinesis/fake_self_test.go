package kinesis

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis/kpl"
)

// The fake itself: Kinesis' limits, per-record failures with their count,
// result ShardIds, and its order check.
func TestFakeKinesis(t *testing.T) {
	rec := func(pk string, size int) types.PutRecordsRequestEntry {
		return types.PutRecordsRequestEntry{PartitionKey: aws.String(pk), Data: make([]byte, size)}
	}
	recs := func(n, size int) []types.PutRecordsRequestEntry {
		out := make([]types.PutRecordsRequestEntry, n)
		for i := range out {
			out[i] = rec(strconv.Itoa(i), size)
		}
		return out
	}
	const mib = 1 << 20
	for _, tc := range []struct {
		name    string
		kib     int32 // the stream's maximum record size; 0: never raised (1 MiB)
		records []types.PutRecordsRequestEntry
		code    string // "" when the call is within the limits
	}{
		{"no record", 0, nil, "ValidationException"},
		{"500 records", 0, recs(500, 10), ""},
		{"501 records", 0, recs(501, 10), "ValidationException"},
		{"1 MiB with its key", 0, []types.PutRecordsRequestEntry{rec("k", mib-1)}, ""},
		{"1 MiB of data and a key", 0, []types.PutRecordsRequestEntry{rec("k", mib)}, "InvalidArgumentException"},
		{"data over 1 MiB", 0, []types.PutRecordsRequestEntry{rec("k", mib+1)}, "ValidationException"},
		{"5 MiB with the keys", 0, recs(5, mib-1), ""},
		{"over 5 MiB", 0, recs(6, mib-1), "InvalidArgumentException"},
		{"over 5 MiB, 1024 KiB said", 1024, recs(6, mib-1), "InvalidArgumentException"},
		{"4 MiB with its key, on a 4 MiB stream", 4096, []types.PutRecordsRequestEntry{rec("k", 4*mib-1)}, ""},
		{"4 MiB of data and a key, on a 4 MiB stream", 4096, []types.PutRecordsRequestEntry{rec("k", 4*mib)}, "InvalidArgumentException"},
		{"data over 4 MiB, on a 4 MiB stream", 4096, []types.PutRecordsRequestEntry{rec("k", 4*mib+1)}, "ValidationException"},
		{"10 MiB with the keys, on a 4 MiB stream", 4096, recs(10, mib-1), ""},
		{"over 10 MiB, on a 4 MiB stream", 4096, recs(11, mib-1), "InvalidArgumentException"},
		{"10 MiB with its key, on a 10 MiB stream", 10240, []types.PutRecordsRequestEntry{rec("k", 10*mib-1)}, ""},
		{"empty key", 0, []types.PutRecordsRequestEntry{rec("", 1)}, "ValidationException"},
		{"key of 257", 0, []types.PutRecordsRequestEntry{rec(strings.Repeat("k", 257), 1)}, "ValidationException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeKinesis(2)
			f.setMaxRecordKiB(tc.kib)
			d, err := f.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("fake")})
			if err != nil || (tc.kib == 0) != (d.StreamDescriptionSummary.MaxRecordSizeInKiB == nil) ||
				(tc.kib != 0 && *d.StreamDescriptionSummary.MaxRecordSizeInKiB != tc.kib) {
				t.Fatalf("DescribeStreamSummary = %+v, %v; want MaxRecordSizeInKiB %d (0: none)", d, err, tc.kib)
			}
			_, err = f.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("fake"), Records: tc.records})
			var apiErr smithy.APIError
			switch {
			case tc.code == "" && err != nil:
				t.Fatalf("PutRecords = %v, want it stored", err)
			case tc.code != "" && (!errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.code):
				t.Fatalf("PutRecords = %v, want a %s", err, tc.code)
			case tc.code != "" && classify(err) != classFatal:
				t.Fatalf("the sink would retry %v forever", err)
			}
		})
	}

	t.Run("partial failure, ShardIds, order", func(t *testing.T) {
		f := newFakeKinesis(2)
		f.fault = func(call int, _ *kinesis.PutRecordsInput) fakeFault {
			if call == 1 {
				return fakeFault{failRecord: func(i int) string {
					return map[int]string{0: codeThroughput, 2: codeInternal}[i]
				}}
			}
			return fakeFault{}
		}
		data := func(s string) []byte { return []byte(s) }
		in := &kinesis.PutRecordsInput{Records: []types.PutRecordsRequestEntry{
			{PartitionKey: aws.String("a"), Data: data("a1")},
			{PartitionKey: aws.String("a"), Data: data("a2")}, // stored before a1: reordered
			{PartitionKey: aws.String("b"), Data: data("b1")},
		}}
		out, err := f.PutRecords(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt32(out.FailedRecordCount) != 2 || aws.ToString(out.Records[0].ErrorCode) != codeThroughput ||
			aws.ToString(out.Records[2].ErrorCode) != codeInternal || out.Records[1].ErrorCode != nil {
			t.Fatalf("answer %+v, want records 1 and 3 failed", out)
		}
		want := f.openShard(kpl.HashKey("a")).ID
		if aws.ToString(out.Records[1].ShardId) != want {
			t.Fatalf("ShardId %s, want %s", aws.ToString(out.Records[1].ShardId), want)
		}
		if errs := f.orderErrors(); len(errs) != 0 {
			t.Fatalf("order errors before a1 is stored: %v", errs)
		}
		in.Records = []types.PutRecordsRequestEntry{in.Records[0], in.Records[2]}
		if _, err := f.PutRecords(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		if errs := f.orderErrors(); len(errs) != 1 || !strings.Contains(errs[0], `"a1"`) {
			t.Fatalf("order errors %q, want one about a1", errs)
		}
	})
}
