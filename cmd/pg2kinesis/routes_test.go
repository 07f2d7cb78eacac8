package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// A stream per table (--stream-name with placeholders) and a routing rule
// (--route), against Postgres and kinesalite: each table's changes land
// in its stream only, an awkward table name is made a valid stream name,
// streams are created at their table's first change (--create-stream),
// and a table renamed mid-stream goes on in its new name's stream.
func TestPerTableStreams(t *testing.T) {
	ep := testenv.KinesisEndpoint(t)
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE SCHEMA audit`)
	for _, tbl := range []string{`orders`, `"Order Items"`, `audit.log`} {
		exec(fmt.Sprintf(`CREATE TABLE %s (id int PRIMARY KEY, v text)`, tbl))
	}
	base := testenv.Name(t)
	api := testenv.KinesisClient(t, ep)
	streams := map[string]string{ // stream → the schema.table its records name
		base + ".public.orders":      "public.orders",
		base + ".public.Order_Items": "public.Order Items",
		base + "-audit":              "audit.log",
		base + ".public.orders_v2":   "public.orders_v2",
	}
	t.Cleanup(func() {
		for s := range streams {
			_, _ = api.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(s)})
		}
	})
	slot := testenv.Name(t)
	d := startDaemon(t, append(connArgs(t, dsn), "-s", slot, "--create-slot", "--kinesis-endpoint", ep,
		"-f", "JSON", "--partition-key", "pk", "--create-stream", "--shard-count", "2", "--shard-rate-limit=false",
		"--stream-name", base+".{schema}.{table}", "--route", `^audit\.=`+base+"-audit",
		"--status-interval", "200ms", "--flush-interval", "50ms")...)
	waitSlotActive(t, conn, slot)
	// A route to a fixed stream is checked, here created, at start.
	if !streamExists(t, api, base+"-audit") {
		t.Fatalf("stream %s-audit was not created at start; log:\n%s", base, d.log())
	}
	for i := range 20 {
		exec(fmt.Sprintf(`INSERT INTO orders VALUES (%d, 'o'); INSERT INTO "Order Items" VALUES (%d, 'i'); INSERT INTO audit.log VALUES (%d, 'a')`, i, i, i))
	}
	exec(`ALTER TABLE orders RENAME TO orders_v2`)
	for i := range 5 {
		exec(fmt.Sprintf(`INSERT INTO orders_v2 VALUES (%d, 'renamed')`, 100+i))
	}
	want := map[string]int{base + ".public.orders": 20, base + ".public.Order_Items": 20, base + "-audit": 20, base + ".public.orders_v2": 5}
	for stream, n := range want {
		waitFor(t, 60*time.Second, "stream "+stream+" to be created", func() bool { return streamExists(t, api, stream) })
		recs := readStream(t, ep, stream).waitDistinct(t, n, 60*time.Second, d)
		for _, r := range recs {
			var rec struct{ Schema, Table string }
			if err := json.Unmarshal(r.Data, &rec); err != nil {
				t.Fatalf("stream %s: %q: %v", stream, r.Data, err)
			}
			if got := rec.Schema + "." + rec.Table; got != streams[stream] {
				t.Errorf("stream %s holds a change of %s, want only %s", stream, got, streams[stream])
			}
		}
	}
	d.stop(t)
	if !strings.Contains(d.log(), "sending to a new stream") {
		t.Errorf("the log does not say which streams were opened:\n%s", d.log())
	}
}

func streamExists(t *testing.T, api *kinesis.Client, stream string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	out, err := api.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		return false
	case err != nil:
		t.Fatalf("describe stream %s: %v", stream, err)
	}
	return out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
}
