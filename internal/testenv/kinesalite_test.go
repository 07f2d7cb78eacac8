package testenv

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// The fault tests rely on a killed kinesalite coming back with its
// streams and the records it had acknowledged.
func TestKinesaliteKeepsRecordsOverKill(t *testing.T) {
	k := StartKinesalite(t)
	c := KinesisClient(t, k.Endpoint)
	stream := Stream(t, c, 1)
	ctx := context.Background()
	put, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"), Data: []byte("before the kill")})
	if err != nil {
		t.Fatal(err)
	}

	k.Kill(t)
	if _, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)}); err == nil {
		t.Fatal("a killed kinesalite still answers")
	}
	k.Start(t)

	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: put.ShardId,
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	got, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Records) != 1 || string(got.Records[0].Data) != "before the kill" {
		t.Fatalf("after the restart the shard holds %d records, want the one put before the kill", len(got.Records))
	}
}
