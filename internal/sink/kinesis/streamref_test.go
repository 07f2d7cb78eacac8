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

	"github.com/pg2kinesis/pg2kinesis/internal/config"
	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv/kinesisproxy"
)

// apiCode is the error code of a Kinesis error, "" for another error.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Kinesalite (3.3.3, which package.json pins) predates on-demand streams:
// its CreateStream requires ShardCount (validations/createStream.js) and
// drops fields it does not know, StreamModeDetails among them
// (validations/index.js). This proves both, so that a kinesalite that
// learns the mode fails here and the test can become an end-to-end one.
// The fake covers the rest: the on-demand CreateStream input
// (TestEnsureStreamCreates) and a stream that scales while the sink
// writes (TestReshardKeepsRecordsReadableAndInOrder, on-demand scaling).
func TestKinesaliteHasNoOnDemandStreams(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	c := client(ep)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	name := testenv.Name(t)
	err := EnsureStream(ctx, c, ByName(name), testenv.Region, StreamSpec{Create: true, Mode: sink.OnDemand, Shards: 2})
	if err == nil {
		_, _ = c.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(name)})
		t.Fatal("kinesalite created an on-demand stream: it now knows the mode, make this an end-to-end test")
	}
	if apiCode(err) != "ValidationException" || !strings.Contains(err.Error(), "shardCount") ||
		!strings.Contains(err.Error(), `"`+name+`"`) || !strings.Contains(err.Error(), testenv.Region) {
		t.Fatalf("on-demand CreateStream: %v, want kinesalite's ValidationException of the missing shardCount, naming the stream and region", err)
	}

	// With a shard count too, kinesalite makes a provisioned stream: the
	// mode is dropped, not refused.
	name = testenv.Name(t) + "-mode"
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(2),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(name)})
	})
	var out *kinesis.DescribeStreamSummaryOutput
	for {
		var err error
		out, err = c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			break // a CREATING stream has no shards yet
		}
		time.Sleep(50 * time.Millisecond)
	}
	if sum := out.StreamDescriptionSummary; sum.StreamModeDetails != nil || aws.ToInt32(sum.OpenShardCount) != 2 {
		t.Fatalf("stream created with a shard count and on-demand: mode %+v, %d shards; want no mode (dropped) and 2 shards",
			sum.StreamModeDetails, aws.ToInt32(sum.OpenShardCount))
	}
}

// kinesaliteARN is the ARN kinesalite gives the stream, which passes
// --stream-arn's checks.
func kinesaliteARN(t *testing.T, c *kinesis.Client, name string) string {
	t.Helper()
	out, err := c.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.StreamDescriptionSummary.StreamARN)
	got, region, err := config.StreamByARN(arn, false, "")
	if err != nil || got != name || region != testenv.Region {
		t.Fatalf("kinesalite's ARN %q: name %q, region %q, %v; want %q in %s", arn, got, region, err, name, testenv.Region)
	}
	return arn
}

// Kinesalite drops StreamARN as it drops every field it does not know,
// and then wants a StreamName: a stream addressed by ARN alone is refused
// by every call the sink makes. This proves it, so that a kinesalite that
// learns ARNs fails here; TestStreamARNEndToEnd gives it ARNs through a
// proxy, and the fake checks every call's fields
// (TestEveryCallNamesTheStreamOneWay).
func TestKinesaliteIgnoresStreamARN(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	c := client(ep)
	name := testenv.Stream(t, c, 1)
	ref := StreamRef{Name: name, ARN: kinesaliteARN(t, c, name)}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	err := EnsureStream(ctx, c, ref, testenv.Region, StreamSpec{})
	if apiCode(err) != "ValidationException" || !strings.Contains(err.Error(), "streamName") {
		t.Fatalf("DescribeStreamSummary by ARN: %v, want kinesalite's ValidationException of a null streamName", err)
	}
	_, err = New(ctx, Config{API: c, Stream: ref, Ack: func([]uint64) {}})
	if apiCode(err) != "InvalidArgumentException" || !strings.Contains(err.Error(), "StreamName should be provided") {
		t.Fatalf("ListShards by ARN: %v, want kinesalite's InvalidArgumentException asking for a StreamName", err)
	}
	_, err = c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamARN: ref.ARNParam(),
		Records: []types.PutRecordsRequestEntry{{Data: []byte("x"), PartitionKey: aws.String("k")}}})
	if apiCode(err) != "ValidationException" || !strings.Contains(err.Error(), "streamName") {
		t.Fatalf("PutRecords by ARN: %v, want kinesalite's ValidationException of a null streamName", err)
	}
}

// A stream addressed by ARN, end to end over HTTP: the SDK's requests
// (StreamARN alone, sent to --kinesis-endpoint) reach a proxy that
// resolves the ARN kinesalite reports, as Kinesis does, and kinesalite
// stores and serves the records; Tail reads them back by ARN. An unknown
// ARN is the error EnsureStream names.
func TestStreamARNEndToEnd(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	c := client(ep)
	name := testenv.Stream(t, c, 2)
	arn := kinesaliteARN(t, c, name)
	proxy := kinesisproxy.Start(t, ep)
	proxy.ResolveARN = func(a string) (string, bool) { return name, a == arn }
	pc := client(proxy.URL)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	other := strings.TrimSuffix(arn, name) + "no-such-stream"
	err := EnsureStream(ctx, pc, StreamRef{Name: "no-such-stream", ARN: other}, testenv.Region, StreamSpec{})
	if err == nil || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), "--stream-arn") {
		t.Fatalf("unknown ARN: %v, want an error naming it and --stream-arn", err)
	}
	ref := StreamRef{Name: name, ARN: arn}
	if err := EnsureStream(ctx, pc, ref, testenv.Region, StreamSpec{}); err != nil {
		t.Fatal(err)
	}
	a := &acks{seen: map[uint64]int{}}
	s, err := New(ctx, Config{API: pc, Stream: ref, Aggregate: true, NoShardLimit: true, FlushInterval: 10 * time.Millisecond, Ack: a.ack})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	const n = 500
	for i := range n {
		if err := s.Put(ctx, sink.Record{Data: fmt.Appendf(nil, "r%d", i), PartitionKey: fmt.Sprint(i % 20), Seq: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	tctx, tcancel := context.WithCancel(ctx)
	defer tcancel()
	if _, err := Tail(tctx, pc, ref, false, func(r TailRecord) error {
		if read[string(r.Data)] = true; len(read) == n {
			tcancel()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st := proxy.Stats()
	t.Logf("proxy: %+v", st)
	if len(read) != n || a.count() != n || st.ByName != 0 || st.ByARN < 6 {
		t.Fatalf("read %d of %d records back, %d acknowledged; %d requests by name, %d by ARN: want all, none by name, every call by ARN", len(read), n, a.count(), st.ByName, st.ByARN)
	}
}
