package testenv

import (
	"context"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// DefaultKinesisEndpoint is where scripts/services.sh runs kinesalite.
const DefaultKinesisEndpoint = "http://127.0.0.1:4567"

// Region and the static credentials tests give the local server, which
// checks neither.
const (
	Region          = "us-east-1"
	AccessKeyID     = "AKIDPG2KINESISTEST"
	SecretAccessKey = "pg2kinesis-test-secret"
)

// KinesisEndpoint is the local Kinesis-protocol server, from
// PG2KINESIS_TEST_KINESIS_ENDPOINT or the services script's default. The
// test fails in CI, and is skipped elsewhere, when it does not answer.
func KinesisEndpoint(t testing.TB) string {
	t.Helper()
	ep := os.Getenv("PG2KINESIS_TEST_KINESIS_ENDPOINT")
	if ep == "" {
		ep = DefaultKinesisEndpoint
	}
	u, err := url.Parse(ep)
	if err != nil {
		t.Fatalf("PG2KINESIS_TEST_KINESIS_ENDPOINT: %v", err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		unavailable(t, "kinesalite", err)
	}
	conn.Close()
	return ep
}

// KinesisClient is a client of endpoint with the test credentials.
func KinesisClient(t testing.TB, endpoint string) *kinesis.Client {
	t.Helper()
	return kinesis.New(kinesis.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
	})
}

// Stream creates a stream with shards shards for the test, waits until it
// is active, and deletes it when the test ends.
func Stream(t testing.TB, c *kinesis.Client, shards int) string {
	t.Helper()
	name := Name(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(shards))}); err != nil {
		t.Fatalf("create stream %s: %v", name, err)
	}
	for {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			t.Fatalf("describe stream %s: %v", name, err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		_, _ = c.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(name)})
	})
	return name
}

// AWSEnv is the environment a pg2kinesis process needs to reach the local
// Kinesis server.
func AWSEnv() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
		"AWS_REGION=" + Region, "AWS_EC2_METADATA_DISABLED=true"}
}
