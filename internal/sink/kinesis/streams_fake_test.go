package kinesis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
)

// fakeStreams is a Kinesis API of several streams, each a fakeKinesis of
// its own, chosen by the call's stream name.
type fakeStreams map[string]*fakeKinesis

func (fs fakeStreams) of(name *string) (*fakeKinesis, error) {
	f := fs[aws.ToString(name)]
	if f == nil {
		return nil, fmt.Errorf("fakeStreams: no stream %q", aws.ToString(name))
	}
	return f, nil
}

func (fs fakeStreams) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, o ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	f, err := fs.of(in.StreamName)
	if err != nil {
		return nil, err
	}
	return f.PutRecords(ctx, in, o...)
}

func (fs fakeStreams) ListShards(ctx context.Context, in *kinesis.ListShardsInput, o ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f, err := fs.of(in.StreamName)
	if err != nil {
		return nil, err
	}
	return f.ListShards(ctx, in, o...)
}

func (fs fakeStreams) DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, o ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	f, err := fs.of(in.StreamName)
	if err != nil {
		return nil, err
	}
	return f.DescribeStreamSummary(ctx, in, o...)
}

func (fs fakeStreams) CreateStream(context.Context, *kinesis.CreateStreamInput, ...func(*kinesis.Options)) (*kinesis.CreateStreamOutput, error) {
	return nil, errors.New("fakeStreams: CreateStream is not needed")
}

// ackedOnce fails unless records 1..n were each acknowledged once.
func ackedOnce(t *testing.T, a *acks, n int) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	checkOnce(t, a.seen, n)
}

func TestStreamsSendsEachRecordToItsStream(t *testing.T) {
	for _, aggregate := range []bool{false, true} {
		t.Run(fmt.Sprintf("aggregate=%v", aggregate), func(t *testing.T) {
			api := fakeStreams{"cdc.public.a": newFakeKinesis(2), "cdc.public.b": newFakeKinesis(1), "audit": newFakeKinesis(3)}
			names := []string{"cdc.public.a", "cdc.public.b", "audit"}
			a := &acks{seen: map[uint64]int{}}
			var ensured []string
			m := NewStreams(Config{API: api, Aggregate: aggregate, Ack: a.ack, MaxBackoff: 5 * time.Millisecond, NoShardLimit: true},
				func(_ context.Context, stream string) error { ensured = append(ensured, stream); return nil })
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			done := make(chan error, 1)
			// The first records are Put before Run starts, the rest after:
			// a stream's sink made either way is run.
			const n = 600
			for seq := uint64(1); seq <= n; seq++ {
				if seq == 100 {
					go func() { done <- m.Run(ctx) }()
				}
				stream := names[seq%3]
				r := sink.Record{Data: fmt.Appendf(nil, "%s|%d", stream, seq), PartitionKey: fmt.Sprint("k", seq%7), Stream: stream, Seq: seq}
				if err := m.Put(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			ackedOnce(t, a, n)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if strings.Join(ensured, ",") != "cdc.public.b,audit,cdc.public.a" {
				t.Errorf("streams checked: %q, want each once, in first use order", ensured)
			}
			for name, f := range api {
				recs, _ := f.read()
				if len(recs) != n/3 {
					t.Errorf("stream %s holds %d records, want %d", name, len(recs), n/3)
				}
				for _, r := range recs {
					if !strings.HasPrefix(string(r.Data), name+"|") {
						t.Errorf("stream %s holds %q", name, r.Data)
					}
				}
				if errs := f.orderErrors(); len(errs) > 0 {
					t.Errorf("stream %s: order: %v", name, errs)
				}
			}
		})
	}
}

func TestStreamsMissingStreamIsAnError(t *testing.T) {
	m := NewStreams(Config{API: fakeStreams{}, Ack: func([]uint64) {}},
		func(_ context.Context, stream string) error {
			return fmt.Errorf("kinesis stream %q does not exist in region r: create it, or start with --create-stream", stream)
		})
	err := m.Put(context.Background(), sink.Record{Data: []byte("x"), PartitionKey: "k", Stream: "cdc.public.gone", Seq: 1})
	if err == nil || !strings.Contains(err.Error(), `"cdc.public.gone" does not exist`) {
		t.Fatalf("Put = %v, want the missing stream named", err)
	}
	err = m.Put(context.Background(), sink.Record{Data: []byte("x"), PartitionKey: "k", Seq: 2})
	if err == nil || !strings.Contains(err.Error(), "names no stream") {
		t.Fatalf("Put without a stream = %v", err)
	}
}

// The streams share one buffer: records Put to many streams never hold
// more than MaxBuffered bytes, however many streams there are.
func TestStreamsShareOneBuffer(t *testing.T) {
	api := fakeStreams{}
	for i := range 8 {
		api[fmt.Sprint("s", i)] = newFakeKinesis(1)
	}
	a := &acks{seen: map[uint64]int{}}
	const limit = 64 << 10
	m := NewStreams(Config{API: api, Ack: a.ack, MaxBuffered: limit}, func(context.Context, string) error { return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// No Run: nothing is sent, so Put blocks once the shared buffer is
	// full, whichever stream the record is for.
	data := make([]byte, 4<<10)
	put := 0
	// Each stream is opened by its first record, without a deadline: what
	// the deadline below bounds is the wait for the buffer alone.
	for seq := uint64(1); seq <= 8; seq++ {
		if err := m.Put(ctx, sink.Record{Data: data, PartitionKey: "k", Stream: fmt.Sprint("s", seq%8), Seq: seq}); err != nil {
			t.Fatal(err)
		}
		put += len(data)
	}
	for seq := uint64(9); ; seq++ {
		pctx, pcancel := context.WithTimeout(ctx, 50*time.Millisecond)
		err := m.Put(pctx, sink.Record{Data: data, PartitionKey: "k", Stream: fmt.Sprint("s", seq%8), Seq: seq})
		pcancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		put += len(data)
	}
	if put > limit || put < limit/2 {
		t.Fatalf("%d bytes Put before the buffer was full, want at most the %d of one shared buffer", put, limit)
	}
}

// A stream Kinesis cannot describe for a moment (throttling) is opened
// once it can; a missing one is an error at once; a Put after Run ended
// opens nothing.
func TestStreamsOpenRetriesWhatMayPass(t *testing.T) {
	api := fakeStreams{"busy": newFakeKinesis(1)}
	calls := map[string]int{}
	ensure := func(_ context.Context, stream string) error {
		calls[stream]++
		switch {
		case stream == "busy" && calls[stream] <= 2:
			return &smithy.OperationError{ServiceID: "Kinesis", OperationName: "DescribeStreamSummary",
				Err: &types.LimitExceededException{Message: aws.String("Rate exceeded")}}
		case stream == "gone":
			return &smithy.OperationError{ServiceID: "Kinesis", OperationName: "DescribeStreamSummary",
				Err: &types.ResourceNotFoundException{Message: aws.String("Stream gone not found")}}
		}
		return nil
	}
	a := &acks{seen: map[uint64]int{}}
	m := NewStreams(Config{API: api, Ack: a.ack, MaxBackoff: time.Millisecond, NoShardLimit: true}, ensure)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() { done <- m.Run(runCtx) }()
	if err := m.Put(ctx, sink.Record{Data: []byte("x"), PartitionKey: "k", Stream: "busy", Seq: 1}); err != nil {
		t.Fatalf("Put to a stream throttled twice: %v", err)
	}
	if calls["busy"] != 3 {
		t.Errorf("busy checked %d times, want 3", calls["busy"])
	}
	err := m.Put(ctx, sink.Record{Data: []byte("y"), PartitionKey: "k", Stream: "gone", Seq: 2})
	if err == nil || !strings.Contains(err.Error(), "not found") || calls["gone"] != 1 {
		t.Fatalf("Put to a missing stream = %v after %d checks, want its error after one", err, calls["gone"])
	}
	if err := m.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	ackedOnce(t, a, 1)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	api["late"] = newFakeKinesis(1)
	err = m.Put(ctx, sink.Record{Data: []byte("z"), PartitionKey: "k", Stream: "late", Seq: 3})
	if err == nil || !strings.Contains(err.Error(), `stream "late": the sink has stopped`) {
		t.Fatalf("Put after Run = %v, want the sink stopped", err)
	}
}

// One stream's fatal error (access denied) ends Run with it, and so stops
// every stream's sender; what the others delivered stays acknowledged.
func TestStreamsOneStreamFailsAll(t *testing.T) {
	bad := newFakeKinesis(1)
	bad.fault = func(int, *kinesis.PutRecordsInput) fakeFault {
		return fakeFault{err: &smithy.OperationError{ServiceID: "Kinesis", OperationName: "PutRecords",
			Err: &types.AccessDeniedException{Message: aws.String("not allowed")}}}
	}
	api := fakeStreams{"good": newFakeKinesis(1), "bad": bad}
	a := &acks{seen: map[uint64]int{}}
	m := NewStreams(Config{API: api, Ack: a.ack, MaxBackoff: time.Millisecond, NoShardLimit: true}, func(context.Context, string) error { return nil })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	if err := m.Put(ctx, sink.Record{Data: []byte("g"), PartitionKey: "k", Stream: "good", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if err := m.Put(ctx, sink.Record{Data: []byte("b"), PartitionKey: "k", Stream: "bad", Seq: 2}); err != nil {
		t.Fatal(err)
	}
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("Run = %v, want the bad stream's error", err)
	}
	if err := m.Drain(ctx); err == nil {
		t.Fatal("Drain after a failed Run returned nil: record 2 was never delivered")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen[2] != 0 {
		t.Fatal("the refused record was acknowledged")
	}
}
