package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv/kinesisproxy"
)

// arnProxy is kinesalite behind a proxy that resolves stream ARNs as
// Kinesis does (kinesalite ignores StreamARN: see
// internal/sink/kinesis.TestKinesaliteIgnoresStreamARN), with a stream of
// shards shards and its ARN.
func arnProxy(t *testing.T, shards int) (proxy *kinesisproxy.Proxy, stream, arn string) {
	t.Helper()
	ep := testenv.KinesisEndpoint(t)
	c := testenv.KinesisClient(t, ep)
	stream = testenv.Stream(t, c, shards)
	out, err := c.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	arn = aws.ToString(out.StreamDescriptionSummary.StreamARN)
	proxy = kinesisproxy.Start(t, ep)
	proxy.ResolveARN = func(a string) (string, bool) { return stream, a == arn }
	return proxy, stream, arn
}

func TestTailByARN(t *testing.T) {
	proxy, stream, arn := arnProxy(t, 1)
	c := testenv.KinesisClient(t, proxy.URL)
	for _, data := range []string{"one", "two"} {
		if _, err := c.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(stream),
			PartitionKey: aws.String("k"), Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		out, err string // wanted in stdout, and as stderr's one line
	}{
		{"by ARN", []string{"--kinesis-endpoint", proxy.URL, "--stream-arn", arn, "--count", "2", "--timeout", "20s"}, 0, "k\tone\nk\ttwo\n", ""},
		{"ARN and name", []string{"--stream-arn", arn, "-k", stream}, 2, "", "--stream-arn and --stream-name both name the stream"},
		{"ARN and another region", []string{"--stream-arn", arn, "--aws-region", "eu-west-1"}, 2, "", "--aws-region eu-west-1 and --stream-arn's region"},
		{"bad ARN", []string{"--stream-arn", "arn:aws:kinesis:us-east-1:1:stream/" + stream}, 2, "", "invalid --stream-arn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runTail(t, tc.args...)
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if code != tc.code || !strings.Contains(out, tc.out) || tc.err == "" && errOut != "" ||
				tc.err != "" && (len(lines) != 1 || !strings.Contains(lines[0], tc.err)) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, %q and %q", code, out, errOut, tc.code, tc.out, tc.err)
			}
		})
	}
	if st := proxy.Stats(); st.ByName != 2 || st.ByARN < 2 { // the two PutRecord calls above are by name
		t.Fatalf("proxy saw %d requests by name and %d by ARN: want tail's all by ARN", st.ByName, st.ByARN)
	}
}

// The daemon publishes to a stream addressed by --stream-arn, every call
// by ARN: the check at start, the listing and PutRecords.
func TestDaemonByStreamARN(t *testing.T) {
	proxy, stream, arn := arnProxy(t, 2)
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	if _, err := conn.Exec(t.Context(), "CREATE TABLE arn_t (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	slot := testenv.Name(t)
	d := startDaemon(t, append(connArgs(t, dsn), "-s", slot, "--create-slot", "--kinesis-endpoint", proxy.URL,
		"--stream-arn", arn, "--status-interval", "200ms", "--flush-interval", "50ms", "--log-format", "json")...)
	waitSlotActive(t, conn, slot)
	reader := readStream(t, testenv.KinesisEndpoint(t), stream)
	const n = 20
	for i := range n {
		if _, err := conn.Exec(t.Context(), fmt.Sprintf("INSERT INTO arn_t VALUES (%d)", i)); err != nil {
			t.Fatal(err)
		}
	}
	reader.waitDistinct(t, n, 60*time.Second, d)
	d.stop(t)
	if st := proxy.Stats(); st.ByName != 0 || st.ByARN < 3 {
		t.Fatalf("proxy saw %d requests by name and %d by ARN: want every call by ARN; log:\n%s", st.ByName, st.ByARN, d.log())
	}
	if !strings.Contains(d.log(), `"stream":"`+stream+`"`) {
		t.Fatalf("the log does not name the stream by its name %q:\n%s", stream, d.log())
	}
}
