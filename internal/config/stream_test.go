package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
)

const testARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/shop-changes"

func TestStreamSettings(t *testing.T) {
	for _, tc := range []struct {
		name                             string
		args, env                        []string
		streamName, arn, region, region2 string // region2: KinesisRegion
		mode                             sink.StreamMode
	}{
		{"defaults", nil, nil, "pg2kinesis", "", "", "", sink.Provisioned},
		{"on-demand", []string{"--create-stream", "--stream-mode", "on-demand"}, nil, "pg2kinesis", "", "", "", sink.OnDemand},
		{"on-demand ignores the shard count", []string{"--create-stream", "--stream-mode=on-demand", "--shard-count", "7"}, nil, "pg2kinesis", "", "", "", sink.OnDemand},
		{"mode from the environment", nil, []string{"PG2KINESIS_STREAM_MODE", "on-demand"}, "pg2kinesis", "", "", "", sink.OnDemand},
		{"provisioned", []string{"--stream-mode", "provisioned"}, nil, "pg2kinesis", "", "", "", sink.Provisioned},
		{"region without an ARN", []string{"--aws-region", "us-west-2"}, nil, "pg2kinesis", "", "us-west-2", "us-west-2", sink.Provisioned},
		{"ARN: its name and region", []string{"--stream-arn", testARN}, nil, "shop-changes", testARN, "", "eu-west-1", sink.Provisioned},
		{"ARN and the same region", []string{"--stream-arn", testARN, "--aws-region", "eu-west-1"}, nil, "shop-changes", testARN, "eu-west-1", "eu-west-1", sink.Provisioned},
		{"ARN from the environment", nil, []string{"PG2KINESIS_STREAM_ARN", testARN}, "shop-changes", testARN, "", "eu-west-1", sink.Provisioned},
		{"ARN of aws-cn", []string{"--stream-arn", "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/a.b_c-1"}, nil, "a.b_c-1", "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/a.b_c-1", "", "cn-north-1", sink.Provisioned},
		{"ARN of aws-us-gov", []string{"--stream-arn", "arn:aws-us-gov:kinesis:us-gov-west-1:123456789012:stream/s"}, nil, "s", "arn:aws-us-gov:kinesis:us-gov-west-1:123456789012:stream/s", "", "us-gov-west-1", sink.Provisioned},
		{"kinesalite's ARN", []string{"--stream-arn", "arn:aws:kinesis:us-east-1:000000000000:stream/x"}, nil, "x", "arn:aws:kinesis:us-east-1:000000000000:stream/x", "", "us-east-1", sink.Provisioned},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.args, env(tc.env...))
			if err != nil {
				t.Fatal(err)
			}
			if c.StreamName != tc.streamName || c.StreamARN != tc.arn || c.AWSRegion != tc.region || c.KinesisRegion != tc.region2 || c.StreamMode != tc.mode {
				t.Fatalf("name %q, ARN %q, region %q, Kinesis region %q, mode %q; want %q, %q, %q, %q, %q",
					c.StreamName, c.StreamARN, c.AWSRegion, c.KinesisRegion, c.StreamMode, tc.streamName, tc.arn, tc.region, tc.region2, tc.mode)
			}
		})
	}
}

func TestStreamUsageErrors(t *testing.T) {
	bad := func(arn string, want ...string) []string {
		return append([]string{`invalid --stream-arn "` + arn + `"`, "PG2KINESIS_STREAM_ARN", "arn:aws:kinesis:REGION:ACCOUNT:stream/NAME"}, want...)
	}
	for _, tc := range []struct {
		name      string
		args, env []string
		want      []string // all must appear in the message
	}{
		{"unknown mode", []string{"--stream-mode", "serverless"}, nil, []string{`"serverless"`, "--stream-mode", "provisioned, on-demand"}},
		{"mode spelt with an underscore", nil, []string{"PG2KINESIS_STREAM_MODE", "ON_DEMAND"}, []string{`"ON_DEMAND"`, "--stream-mode", "provisioned, on-demand"}},
		{"not an ARN", []string{"--stream-arn", "shop-changes"}, nil, bad("shop-changes", "not an ARN")},
		{"partition", []string{"--stream-arn", "arn:aws-iso:kinesis:us-iso-east-1:123456789012:stream/s"}, nil,
			bad("arn:aws-iso:kinesis:us-iso-east-1:123456789012:stream/s", `partition "aws-iso"`, "aws, aws-cn or aws-us-gov")},
		{"service", []string{"--stream-arn", "arn:aws:firehose:eu-west-1:123456789012:deliverystream/s"}, nil,
			bad("arn:aws:firehose:eu-west-1:123456789012:deliverystream/s", `service "firehose"`)},
		{"no region", []string{"--stream-arn", "arn:aws:kinesis::123456789012:stream/s"}, nil, bad("arn:aws:kinesis::123456789012:stream/s", `"" is not a region`)},
		{"region of another partition", []string{"--stream-arn", "arn:aws:kinesis:cn-north-1:123456789012:stream/s"}, nil,
			bad("arn:aws:kinesis:cn-north-1:123456789012:stream/s", `"cn-north-1" is not a region of partition aws`)},
		{"region not of aws-cn", []string{"--stream-arn", "arn:aws-cn:kinesis:eu-west-1:123456789012:stream/s"}, nil,
			bad("arn:aws-cn:kinesis:eu-west-1:123456789012:stream/s", "not a region of partition aws-cn")},
		{"short account", []string{"--stream-arn", "arn:aws:kinesis:eu-west-1:12345:stream/s"}, nil, bad("arn:aws:kinesis:eu-west-1:12345:stream/s", `account "12345"`, "12 digits")},
		{"account alias", []string{"--stream-arn", "arn:aws:kinesis:eu-west-1:shop:stream/s"}, nil, bad("arn:aws:kinesis:eu-west-1:shop:stream/s", "12 digits")},
		{"not a stream", []string{"--stream-arn", "arn:aws:kinesis:eu-west-1:123456789012:table/s"}, nil, bad("arn:aws:kinesis:eu-west-1:123456789012:table/s", `resource "table/s"`)},
		{"empty name", []string{"--stream-arn", "arn:aws:kinesis:eu-west-1:123456789012:stream/"}, nil, bad("arn:aws:kinesis:eu-west-1:123456789012:stream/", "1 to 128")},
		{"bad name", []string{"--stream-arn", "arn:aws:kinesis:eu-west-1:123456789012:stream/a b"}, nil, bad("arn:aws:kinesis:eu-west-1:123456789012:stream/a b", "1 to 128")},
		{"name too long", []string{"--stream-arn", "arn:aws:kinesis:eu-west-1:123456789012:stream/" + strings.Repeat("s", 129)}, nil, []string{"--stream-arn", "1 to 128"}},
		{"a consumer's ARN", []string{"--stream-arn", "arn:aws:kinesis:eu-west-1:123456789012:stream/s/consumer/c:1700000000"}, nil, []string{"--stream-arn", "not a consumer's"}},
		{"region disagrees", []string{"--stream-arn", testARN, "--aws-region", "us-east-1"}, nil, []string{"--aws-region us-east-1", "--stream-arn's region eu-west-1", "disagree"}},
		{"region from the environment disagrees", []string{"--stream-arn", testARN}, []string{"PG2KINESIS_AWS_REGION", "us-east-1"}, []string{"--aws-region us-east-1", "eu-west-1"}},
		{"name and ARN", []string{"--stream-arn", testARN, "--stream-name", "shop-changes"}, nil, []string{"--stream-arn and --stream-name", "give one"}},
		{"short name and ARN", []string{"--stream-arn", testARN, "-k", "pg2kinesis"}, nil, []string{"--stream-arn and --stream-name"}},
		{"name from the environment and ARN", []string{"--stream-arn", testARN}, []string{"PG2KINESIS_STREAM_NAME", "x"}, []string{"--stream-arn and --stream-name"}},
		{"create and ARN", []string{"--stream-arn", testARN, "--create-stream"}, nil, []string{"--create-stream cannot be used with --stream-arn", "caller's account"}},
		{"create on demand and ARN", nil, []string{"PG2KINESIS_STREAM_ARN", testARN, "PG2KINESIS_CREATE_STREAM", "true", "PG2KINESIS_STREAM_MODE", "on-demand"}, []string{"--create-stream cannot be used with --stream-arn"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.args, env(tc.env...))
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("Parse = %v, want a *UsageError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// A config file's stream-name is as explicit as the flag: with an ARN
// from the environment, which of the two names the stream is ambiguous.
func TestStreamNameInFileConflictsWithARN(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("stream-name: shop-changes\nstream-mode: on-demand\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse([]string{"--config", path, "--stream-arn", testARN}, env()); err == nil || !strings.Contains(err.Error(), "--stream-arn and --stream-name") {
		t.Fatalf("Parse = %v, want the conflict of --stream-arn and the file's stream-name", err)
	}
	c, err := Parse([]string{"--config", path}, env())
	if err != nil || c.StreamMode != sink.OnDemand {
		t.Fatalf("Parse = %+v, %v, want stream-mode on-demand from the file", c, err)
	}
}
