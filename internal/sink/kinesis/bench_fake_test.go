package kinesis

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis/kpl"
)

// BenchmarkFakeSink measures the aggregating sink against a bare fake
// (no bookkeeping of its own), Put to acknowledgement, with partition keys
// as the default --partition-key xid makes them: decimal transaction ids.
// keys=distinct is a stream of single-row transactions, each record its
// own key; keys=txn1000 shares a key between 1000 consecutive records;
// keys=shared is one key for all. cpu-ns/op is the process' CPU time (the
// sender's goroutines included) per record, what the end-to-end bench
// counts as CPU per row. recs/krec (user records per Kinesis record) and
// B/call (bytes per PutRecords call) say how well it aggregates; mode=plain
// is --no-aggregate, where krec/call is the records per call.
func BenchmarkFakeSink(b *testing.B) {
	for _, tc := range []struct {
		name   string
		perKey int // consecutive records sharing a key; 0: all of them
		plain  bool
	}{{"keys=distinct", 1, false}, {"keys=txn1000", 1000, false}, {"keys=shared", 0, false}, {"mode=plain/keys=distinct", 1, true}} {
		b.Run(tc.name, func(b *testing.B) {
			// Distinct within any aggregate (1 MiB holds fewer records),
			// and made before the clock starts: the pipeline, not the
			// sink, pays for formatting them.
			keys := make([]string, 1<<16)
			for i := range keys {
				keys[i] = strconv.Itoa(7_000_000 + i)
			}
			key := func(i int) string {
				if tc.perKey == 0 {
					return keys[0]
				}
				return keys[(i/tc.perKey)&(len(keys)-1)]
			}
			data := []byte(strings.Repeat("x", 200))

			f := newFakeKinesis(4) // as bench/run.sh creates its streams
			f.bare = true
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// The bare fake has no shard limits: the sink's would only slow it.
			s, err := New(ctx, Config{API: f, Stream: ByName("fake"), Aggregate: !tc.plain, NoShardLimit: true, Ack: func([]uint64) {}})
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()

			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			cpu := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Put(ctx, sink.Record{Data: data, PartitionKey: key(i), Seq: uint64(i + 1)}); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Drain(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			st := s.Stats()
			if st.Records != b.N {
				b.Fatalf("%d records acknowledged, want %d", st.Records, b.N)
			}
			reportBatching(b, st)
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// reportBatching reports how well the sink batched: user records per
// Kinesis record, Kinesis records and bytes per call.
func reportBatching(b *testing.B, st Stats) {
	if st.KinesisRecords == 0 || st.Calls == 0 {
		return
	}
	b.ReportMetric(float64(st.Records)/float64(st.KinesisRecords), "recs/krec")
	b.ReportMetric(float64(st.KinesisRecords)/float64(st.Calls), "krec/call")
	b.ReportMetric(float64(st.Bytes)/float64(st.Calls), "B/call")
}

// place stores in's records on their shards as Kinesis does, and no more.
// Caller holds f.mu.
func (f *fakeKinesis) place(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
	out := &kinesis.PutRecordsOutput{Records: make([]types.PutRecordsResultEntry, len(in.Records))}
	for i, r := range in.Records {
		h := kpl.HashKey(aws.ToString(r.PartitionKey))
		if r.ExplicitHashKey != nil {
			var err error
			if h, err = kpl.ParseHash(*r.ExplicitHashKey); err != nil {
				return nil, &types.InvalidArgumentException{Message: aws.String(err.Error())}
			}
		}
		sh := f.openShard(h)
		sh.stored++
		out.Records[i] = types.PutRecordsResultEntry{ShardId: aws.String(sh.ID), SequenceNumber: aws.String(strconv.Itoa(sh.stored))}
	}
	return out, nil
}

// cpuTime is the user and system time the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
