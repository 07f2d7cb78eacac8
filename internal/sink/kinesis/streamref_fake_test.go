package kinesis

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pg2kinesis/pg2kinesis/internal/config"
	"github.com/pg2kinesis/pg2kinesis/internal/sink"
)

// streamCalls is the fake behind a recorder of the stream each call
// names: its StreamName and StreamARN, whatever the operation.
type streamCalls struct {
	*fakeKinesis
	mu      sync.Mutex
	calls   []streamCall
	missing bool // DescribeStreamSummary: ResourceNotFound until CreateStream
	created []*kinesis.CreateStreamInput
}

type streamCall struct {
	op        string
	name, arn *string
}

func (r *streamCalls) note(op string, in any) {
	v := reflect.ValueOf(in).Elem()
	c := streamCall{op: op, name: v.FieldByName("StreamName").Interface().(*string)}
	// CreateStreamInput has no StreamARN field: a stream is created by name.
	if f := v.FieldByName("StreamARN"); f.IsValid() {
		c.arn = f.Interface().(*string)
	}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

func (r *streamCalls) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	r.note("PutRecords", in)
	return r.fakeKinesis.PutRecords(ctx, in, opts...)
}

func (r *streamCalls) ListShards(ctx context.Context, in *kinesis.ListShardsInput, opts ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	r.note("ListShards", in)
	return r.fakeKinesis.ListShards(ctx, in, opts...)
}

func (r *streamCalls) DescribeStreamSummary(_ context.Context, in *kinesis.DescribeStreamSummaryInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	r.note("DescribeStreamSummary", in)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.missing {
		return nil, &types.ResourceNotFoundException{Message: aws.String("fake: no such stream")}
	}
	return &kinesis.DescribeStreamSummaryOutput{StreamDescriptionSummary: &types.StreamDescriptionSummary{StreamStatus: types.StreamStatusActive}}, nil
}

func (r *streamCalls) CreateStream(_ context.Context, in *kinesis.CreateStreamInput, _ ...func(*kinesis.Options)) (*kinesis.CreateStreamOutput, error) {
	r.note("CreateStream", in)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.created = append(r.created, in)
	r.missing = false
	return &kinesis.CreateStreamOutput{}, nil
}

// GetShardIterator and GetRecords serve Tail a closed, empty shard: only
// the names its calls carry matter here.
func (r *streamCalls) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	r.note("GetShardIterator", in)
	return &kinesis.GetShardIteratorOutput{ShardIterator: in.ShardId}, nil
}

func (r *streamCalls) GetRecords(context.Context, *kinesis.GetRecordsInput, ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	return &kinesis.GetRecordsOutput{}, nil
}

// Every call names the stream one way: by ARN alone when given one (the
// SDK routes a call carrying StreamARN to the ARN's account), else by name
// alone. The run covers each call the program makes: EnsureStream's check,
// the sink's listing, its PutRecords, the listing again after the stream
// was split while the sink wrote (as on-demand scaling does), and Tail's.
// Logs name the stream by its name either way.
func TestEveryCallNamesTheStreamOneWay(t *testing.T) {
	const arn = "arn:aws:kinesis:eu-west-1:123456789012:stream/shop"
	for _, ref := range []StreamRef{{Name: "shop", ARN: arn}, ByName("shop")} {
		t.Run(fmt.Sprintf("ARN %q", ref.ARN), func(t *testing.T) {
			api := &streamCalls{fakeKinesis: newFakeKinesis(1)}
			api.beforeOp = func(f *fakeKinesis, call int, _ *kinesis.PutRecordsInput) {
				if call == 2 {
					f.split("shardId-000000000000", 500)
				}
				time.Sleep(time.Millisecond) // lets records pile up: fewer, larger calls
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := EnsureStream(ctx, api, ref, "eu-west-1", StreamSpec{}); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			s, err := New(ctx, Config{API: api, Stream: ref, Aggregate: true, NoShardLimit: true, FlushInterval: time.Millisecond,
				MaxBackoff: time.Millisecond, Ack: func([]uint64) {}, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- s.Run(runCtx) }()
			// Drained in rounds: a fast machine could otherwise send all
			// of them in one call, before the split.
			for seq := uint64(1); seq <= 2000; seq++ {
				if err := s.Put(ctx, sink.Record{Data: fmt.Appendf(nil, "r%d", seq), PartitionKey: fmt.Sprint(seq % 50), Seq: seq}); err != nil {
					t.Fatal(err)
				}
				if seq%500 == 0 {
					if err := s.Drain(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if _, err := Tail(ctx, api, ref, false, func(TailRecord) error { return nil }); err != nil {
				t.Fatal(err)
			}
			ops := map[string]int{}
			for _, c := range api.calls {
				ops[c.op]++
				ok := aws.ToString(c.name) == "shop" && c.arn == nil
				if ref.ARN != "" {
					ok = c.name == nil && aws.ToString(c.arn) == arn
				}
				if !ok {
					t.Fatalf("%s named StreamName %v, StreamARN %v; want only %s", c.op, aws.ToString(c.name), aws.ToString(c.arn), map[bool]string{true: "the ARN", false: "the name"}[ref.ARN != ""])
				}
			}
			// Described by EnsureStream, and for its maximum record size by
			// New and after the split; listed by New, after the split and
			// by Tail.
			if ops["DescribeStreamSummary"] != 3 || ops["ListShards"] < 3 || ops["PutRecords"] < 2 || ops["GetShardIterator"] != 3 {
				t.Fatalf("calls %v: want DescribeStreamSummary thrice, ListShards thrice or more (the split was followed), PutRecords, and a GetShardIterator per shard", ops)
			}
			if !strings.Contains(logs.String(), `"stream":"shop"`) || strings.Contains(logs.String(), `"stream":{`) {
				t.Fatalf("logs name the stream otherwise than by its name:\n%s", logs.String())
			}
		})
	}
}

// --create-stream makes a provisioned stream of --shard-count shards, or
// an on-demand one without a shard count (Kinesis rejects one with it);
// a stream addressed by ARN is never created, as config refuses the pair.
func TestEnsureStreamCreates(t *testing.T) {
	const arn = "arn:aws:kinesis:eu-west-1:123456789012:stream/shop"
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		spec StreamSpec
		want *kinesis.CreateStreamInput
	}{
		{"provisioned", StreamSpec{Create: true, Mode: sink.Provisioned, Shards: 3},
			&kinesis.CreateStreamInput{StreamName: aws.String("shop"), ShardCount: aws.Int32(3)}},
		{"provisioned by default", StreamSpec{Create: true, Shards: 2},
			&kinesis.CreateStreamInput{StreamName: aws.String("shop"), ShardCount: aws.Int32(2)}},
		{"on-demand", StreamSpec{Create: true, Mode: sink.OnDemand, Shards: 3},
			&kinesis.CreateStreamInput{StreamName: aws.String("shop"), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := &streamCalls{fakeKinesis: newFakeKinesis(1), missing: true}
			if err := EnsureStream(ctx, api, ByName("shop"), "eu-west-1", tc.spec); err != nil {
				t.Fatal(err)
			}
			if len(api.created) != 1 || !reflect.DeepEqual(api.created[0], tc.want) {
				t.Fatalf("CreateStream calls %+v, want one of %+v", api.created, tc.want)
			}
		})
	}
	api := &streamCalls{fakeKinesis: newFakeKinesis(1), missing: true}
	err := EnsureStream(ctx, api, StreamRef{Name: "shop", ARN: arn}, "eu-west-1", StreamSpec{Create: true, Mode: sink.OnDemand})
	if err == nil || !strings.Contains(err.Error(), `"shop"`) || !strings.Contains(err.Error(), arn) || len(api.created) != 0 {
		t.Fatalf("missing stream by ARN: %v, %d CreateStream calls; want an error naming the stream and its ARN, and none", err, len(api.created))
	}
}

// Every ARN --stream-arn admits resolves, with the region config derives
// from it, to an endpoint of that region: the SDK refuses an ARN whose
// partition is not the client region's, which config's checks must rule
// out before any call. No request is made.
func TestStreamARNResolvesToItsRegion(t *testing.T) {
	for _, arn := range []string{
		"arn:aws:kinesis:eu-west-1:123456789012:stream/shop",
		"arn:aws-cn:kinesis:cn-north-1:123456789012:stream/shop",
		"arn:aws-us-gov:kinesis:us-gov-west-1:123456789012:stream/shop",
	} {
		_, region, err := config.StreamByARN(arn, false, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range []string{"data", "control"} {
			ep, err := kinesis.NewDefaultEndpointResolverV2().ResolveEndpoint(t.Context(), kinesis.EndpointParameters{
				Region: aws.String(region), StreamARN: aws.String(arn), OperationType: aws.String(op),
				UseFIPS: aws.Bool(false), UseDualStack: aws.Bool(false)})
			if err != nil || !strings.Contains(ep.URI.Host, region) {
				t.Fatalf("%s, %s call: endpoint %v, %v; want one in %s", arn, op, ep.URI.String(), err, region)
			}
			t.Logf("%s, %s: %s", arn, op, ep.URI.String())
		}
	}
}
