package pipeline

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
)

type fakeSink struct {
	got  []string
	fail error
}

func (f *fakeSink) Write(_ context.Context, r sink.Record) error {
	if f.fail != nil {
		return f.fail
	}
	f.got = append(f.got, string(r.Data))
	return nil
}

func (f *fakeSink) Close() error { return nil }

func TestRawHandlerFlushesOnlyDelivered(t *testing.T) {
	src := source.New(source.Config{})
	fs := &fakeSink{}
	h := &rawHandler{src: src, sink: fs}
	ctx := t.Context()

	if err := h.HandleData(ctx, pglogrepl.XLogData{WALStart: 100, WALData: []byte("BEGIN 7")}); err != nil {
		t.Fatal(err)
	}
	if src.Flushed() != 100 || len(fs.got) != 1 {
		t.Fatalf("after one delivered message: flushed %s, sink %q", src.Flushed(), fs.got)
	}

	fs.fail = errors.New("sink down")
	if err := h.HandleData(ctx, pglogrepl.XLogData{WALStart: 200, WALData: []byte("COMMIT 7")}); err == nil {
		t.Fatal("want the sink's error")
	}
	if src.Flushed() != 100 {
		t.Fatalf("flushed %s after a failed write, want 0/64 (100)", src.Flushed())
	}

	// Idle: the keepalive's WAL end may be flushed, since nothing is in flight.
	if err := h.HandleKeepalive(ctx, 300); err != nil {
		t.Fatal(err)
	}
	if src.Flushed() != 300 {
		t.Fatalf("flushed %s after keepalive, want 300", src.Flushed())
	}
	// Never backwards.
	_ = h.HandleKeepalive(ctx, 250)
	if src.Flushed() != 300 {
		t.Fatalf("flushed went back to %s", src.Flushed())
	}
}
