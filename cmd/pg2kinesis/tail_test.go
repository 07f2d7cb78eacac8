package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis/kpl"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// runTail runs `pg2kinesis tail` with the local Kinesis' credentials.
func runTail(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runBinary(t, append(cleanEnv(), testenv.AWSEnv()...), append([]string{"tail"}, args...)...)
}

func TestTail(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	c := testenv.KinesisClient(t, ep)
	stream := testenv.Stream(t, c, 1)
	for _, data := range []string{"one", "two", "three"} {
		if _, err := c.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(stream),
			PartitionKey: aws.String("k"), Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
	}
	target := []string{"--kinesis-endpoint", ep, "-k", stream}
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		out, err string // wanted in stdout, and as stderr's one line
	}{
		{"count reached", append(target, "--count", "2", "--timeout", "20s"), 0, "k\tone\nk\ttwo\n", ""},
		{"count not reached in time", append(target, "--count", "5", "--timeout", "5s"), 1, "k\tone\nk\ttwo\nk\tthree\n", "3 of the 5 records asked for"},
		{"unknown flag", []string{"--bogus"}, 2, "", "flag provided but not defined: -bogus"},
		{"bad --from", append(target, "--from", "yesterday"), 2, "", `invalid value "yesterday" for --from`},
		{"extra argument", []string{"now"}, 2, "", `unexpected argument "now"`},
		{"bad stream name", []string{"--kinesis-endpoint", ep, "-k", "bad name!"}, 2, "", `invalid --stream-name "bad name!"`},
		{"help", []string{"--help"}, 0, "Usage: pg2kinesis tail", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runTail(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) {
				t.Fatalf("exit %d, stdout %q; want exit %d and %q (stderr %q)", code, out, tc.code, tc.out, errOut)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if tc.err == "" && errOut != "" || tc.err != "" && (len(lines) != 1 || !strings.Contains(lines[0], tc.err)) {
				t.Fatalf("stderr %q, want one line with %q", errOut, tc.err)
			}
		})
	}
}

// An aggregate on a shard whose range does not hold one of its records is
// dropped whole, as the KCL drops it, and the count is said on stderr.
func TestTailDropsAsTheKCL(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	c := testenv.KinesisClient(t, ep)
	stream := testenv.Stream(t, c, 2) // split at 2^127
	var low, high string
	for i := 0; low == "" || high == ""; i++ {
		k := fmt.Sprintf("k%d", i)
		if kpl.HashKey(k).Hi < 1<<63 {
			low = k
		} else {
			high = k
		}
	}
	put := func(ehk string, keys ...string) {
		a := kpl.NewAggregator()
		for _, k := range keys {
			a.Add(k, []byte("of "+k))
		}
		if _, err := c.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(stream),
			PartitionKey: aws.String(a.PartitionKey()), ExplicitHashKey: aws.String(ehk), Data: a.Encode(nil)}); err != nil {
			t.Fatal(err)
		}
	}
	put("0", low, high, low) // on the low shard, with a stray record
	put("0", low)
	out, errOut, code := runTail(t, "--kinesis-endpoint", ep, "-k", stream, "--timeout", "3s")
	if code != 0 || out != low+"\tof "+low+"\n" || !strings.Contains(errOut, "dropped 3 records") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want the one record of the aggregate in range, and 3 dropped", code, out, errOut)
	}
}
