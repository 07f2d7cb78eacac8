// Package kinesis is the Kinesis sink: it packs records into KPL aggregates
// per predicted shard, sends them with PutRecords, one request in flight per
// shard, retries with backoff without ever reordering a partition key, and
// acknowledges each record once Kinesis has stored it.
package kinesis

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// API is the part of the Kinesis client the sink uses; *kinesis.Client
// implements it.
type API interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, opts ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, opts ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	CreateStream(ctx context.Context, in *kinesis.CreateStreamInput, opts ...func(*kinesis.Options)) (*kinesis.CreateStreamOutput, error)
}

// ClientConfig says how to reach Kinesis.
type ClientConfig struct {
	Region   string // empty: the SDK's default chain (AWS_REGION, profile)
	Endpoint string // a local Kinesis-protocol server, e.g. http://127.0.0.1:4567
	// Static credentials, for tests against a local server; empty uses the
	// SDK's default chain (environment, profile, instance role).
	AccessKeyID, SecretAccessKey string
}

// NewClient builds a Kinesis client. The SDK's standard retries stay on
// for control-plane and read calls (a reused keep-alive connection that
// the server just closed is common); PutRecords is sent without them, as
// the sink retries it itself so that a retry never reorders records.
func NewClient(ctx context.Context, cc ClientConfig) (*kinesis.Client, string, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().
			WithTimeout(30 * time.Second).
			WithTransportOptions(func(tr *http.Transport) {
				tr.MaxIdleConnsPerHost = 64
			})),
	}
	if cc.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cc.Region))
	}
	if cc.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cc.AccessKeyID, cc.SecretAccessKey, "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, "", errors.New("no AWS region: pass --aws-region or set AWS_REGION")
	}
	client := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		if cc.Endpoint != "" {
			o.BaseEndpoint = aws.String(cc.Endpoint)
		}
	})
	return client, cfg.Region, nil
}

// EnsureStream checks that stream exists and is writable. With create, a
// missing stream is created with shards shards; either way it waits until
// the stream is ACTIVE or UPDATING.
func EnsureStream(ctx context.Context, api API, stream, region string, create bool, shards int) error {
	created := false
	for {
		out, err := api.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		var nf *types.ResourceNotFoundException
		switch {
		case errors.As(err, &nf) && !create:
			return fmt.Errorf("kinesis stream %q does not exist in region %s: create it, or start with --create-stream (and --shard-count)", stream, region)
		case errors.As(err, &nf) && !created:
			_, err := api.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(int32(shards))})
			var inUse *types.ResourceInUseException
			if err != nil && !errors.As(err, &inUse) {
				return fmt.Errorf("create Kinesis stream %q in region %s: %w", stream, region, err)
			}
			created = true
		case err != nil && !errors.As(err, &nf):
			return fmt.Errorf("describe Kinesis stream %q in region %s: %w", stream, region, err)
		case err == nil:
			switch out.StreamDescriptionSummary.StreamStatus {
			case types.StreamStatusActive, types.StreamStatusUpdating:
				return nil
			case types.StreamStatusDeleting:
				return fmt.Errorf("kinesis stream %q in region %s is being deleted", stream, region)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
