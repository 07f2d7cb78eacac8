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

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
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

// StreamSpec says whether and how EnsureStream creates a missing stream.
type StreamSpec struct {
	Create bool
	Mode   sink.StreamMode // "" is provisioned
	Shards int             // of a provisioned stream; on-demand scales by itself
}

// createInput is the CreateStream call of spec. It takes no ARN: a stream
// is created in the caller's account, by name.
func (spec StreamSpec) createInput(name string) *kinesis.CreateStreamInput {
	if spec.Mode == sink.OnDemand {
		return &kinesis.CreateStreamInput{StreamName: aws.String(name),
			StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}
	}
	return &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(spec.Shards))}
}

// EnsureStream checks that stream exists and is writable. With
// spec.Create, a missing stream is created as spec says; either way it
// waits until the stream is ACTIVE or UPDATING. A stream addressed by ARN
// is never created (config refuses --create-stream with --stream-arn).
func EnsureStream(ctx context.Context, api API, stream StreamRef, region string, spec StreamSpec) error {
	create := spec.Create && stream.ARN == ""
	created := false
	// A stream being created is polled soon, then less often: Kinesis
	// takes seconds to activate one, a local Kinesis-protocol server
	// none, and a fixed half-second wait was most of a short run's start.
	poll := 50 * time.Millisecond
	for {
		out, err := api.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: stream.NameParam(), StreamARN: stream.ARNParam()})
		var nf *types.ResourceNotFoundException
		switch {
		case errors.As(err, &nf) && stream.ARN != "":
			return fmt.Errorf("kinesis stream %q (%s) does not exist: create it in its account, or correct --stream-arn", stream, stream.ARN)
		case errors.As(err, &nf) && !create:
			return fmt.Errorf("kinesis stream %q does not exist in region %s: create it, or start with --create-stream (and --stream-mode, --shard-count)", stream, region)
		case errors.As(err, &nf) && !created:
			_, err := api.CreateStream(ctx, spec.createInput(stream.Name))
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
		case <-time.After(poll):
		}
		poll = min(2*poll, time.Second)
	}
}
