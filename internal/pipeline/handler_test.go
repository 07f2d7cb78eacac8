package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/catalog/catalogtest"
	"github.com/pg2kinesis/pg2kinesis/internal/checkpoint"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/decode/testdecoding"
	"github.com/pg2kinesis/pg2kinesis/internal/filter"
	"github.com/pg2kinesis/pg2kinesis/internal/format"
	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

type failingSink struct{ captureSink }

func (*failingSink) Put(context.Context, sink.Record) error { return errors.New("sink down") }

// heldSink keeps records unacknowledged until release.
type heldSink struct {
	captureSink
	held []uint64
}

func (s *heldSink) Put(_ context.Context, r sink.Record) error {
	s.held = append(s.held, r.Seq)
	return nil
}

// testKeys are the tables the handler tests' changes name.
var testKeys = catalog.Keys{{Schema: "public", Table: "items"}: catalog.PK("id"), {Schema: "public", Table: "nokey"}: {}}

func testHandler(t *testing.T, snk sink.Sink, flt *filter.Filter, cfg Config) (*changeHandler, *source.Source, *checkpoint.Tracker) {
	t.Helper()
	name := format.CSV
	if cfg.FullChange {
		name = format.CSVPayload
	}
	f, err := format.New(name, format.Options{Plugin: decode.TestDecoding, FullChange: cfg.FullChange})
	if err != nil {
		t.Fatal(err)
	}
	keys := catalog.New(catalogtest.Fixed(testKeys), nil)
	tr := checkpoint.New(0)
	src := source.New(source.Config{Position: tr}) // wired as Run wires them
	if cs, ok := snk.(*captureSink); ok {
		cs.ack = func(seqs []uint64) { tr.Ack(seqs...) }
	}
	return newChangeHandler(src, tr, testdecoding.New(), flt, keys, f, snk, cfg, nil), src, tr
}

func feed(t *testing.T, h *changeHandler, lsn pglogrepl.LSN, data string) error {
	t.Helper()
	return h.HandleData(t.Context(), pglogrepl.XLogData{WALStart: lsn, WALData: []byte(data)})
}

func TestHandlerFlushesCommitsOnceDelivered(t *testing.T) {
	snk := &captureSink{}
	h, src, _ := testHandler(t, snk, filter.New(nil, nil), Config{})
	for i, m := range []string{"BEGIN 7", "table public.items: INSERT: id[integer]:1", "COMMIT 7"} {
		if err := feed(t, h, pglogrepl.LSN(100+i), m); err != nil {
			t.Fatal(err)
		}
	}
	if src.Flushed() != 102 || len(snk.lines) != 1 || snk.lines[0] != "0,CDC,7,public.items,INSERT,1" {
		t.Fatalf("flushed %d, records %q", src.Flushed(), snk.lines)
	}

	// An unparsable message stops the run and nothing moves.
	err := feed(t, h, 200, "table public.items: UPSERT: id[integer]:2")
	var pe *decode.ParseError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "0/C8") {
		t.Fatalf("HandleData = %v, want a ParseError naming LSN 0/C8", err)
	}
	if src.Flushed() != 102 {
		t.Fatalf("flushed %d after a parse error, want 102", src.Flushed())
	}
}

func TestHandlerWaitsForAcks(t *testing.T) {
	snk := &heldSink{}
	h, src, tr := testHandler(t, snk, filter.New(nil, nil), Config{})
	for i, m := range []string{"BEGIN 7", "table public.items: INSERT: id[integer]:1", "COMMIT 7", "BEGIN 8", "COMMIT 8"} {
		if err := feed(t, h, pglogrepl.LSN(100+i), m); err != nil {
			t.Fatal(err)
		}
	}
	_ = h.HandleKeepalive(t.Context(), 500, true)
	if src.Flushed() != 0 {
		t.Fatalf("flushed %d with a record unacknowledged", src.Flushed())
	}
	tr.Ack(snk.held[0])
	_ = h.HandleKeepalive(t.Context(), 500, true)
	if src.Flushed() != 500 {
		t.Fatalf("flushed %d after the ack and an idle keepalive, want 500", src.Flushed())
	}
}

func TestHandlerSinkErrorStops(t *testing.T) {
	h, src, _ := testHandler(t, &failingSink{}, filter.New(nil, nil), Config{})
	_ = feed(t, h, 10, "BEGIN 8")
	if err := feed(t, h, 11, "table public.items: INSERT: id[integer]:1"); err == nil || !strings.Contains(err.Error(), "sink down") {
		t.Fatalf("HandleData = %v, want the sink's error", err)
	}
	if src.Flushed() != 0 {
		t.Fatalf("flushed %d, want 0", src.Flushed())
	}
}

func TestHandlerFiltersAndAcknowledges(t *testing.T) {
	snk := &captureSink{}
	h, src, _ := testHandler(t, snk, filter.New(nil, []string{"delete"}), Config{})
	for i, m := range []string{"BEGIN 9", "table public.items: INSERT: id[integer]:1", "table public.items: DELETE: id[integer]:1", "COMMIT 9",
		"BEGIN 10", "table public.items: INSERT: id[integer]:2", "COMMIT 10"} {
		if err := feed(t, h, pglogrepl.LSN(1+i), m); err != nil {
			t.Fatal(err)
		}
	}
	if len(snk.lines) != 1 || !strings.HasSuffix(snk.lines[0], ",DELETE,1") || src.Flushed() != 7 {
		t.Fatalf("records %q, flushed %d; want the delete only, and the filtered transaction flushed", snk.lines, src.Flushed())
	}
}

func TestHandlerTableWithoutKey(t *testing.T) {
	snk := &captureSink{}
	h, _, _ := testHandler(t, snk, filter.New(nil, nil), Config{})
	_ = feed(t, h, 1, "BEGIN 9")
	for i := 0; i < 3; i++ {
		if err := feed(t, h, pglogrepl.LSN(2+i), "table public.nokey: INSERT: v[text]:'x'"); err != nil {
			t.Fatal(err)
		}
	}
	if len(snk.lines) != 0 || h.skippedNoKey != 3 {
		t.Fatalf("records %q, skipped %d", snk.lines, h.skippedNoKey)
	}

	full, _, _ := testHandler(t, snk, filter.New(nil, nil), Config{FullChange: true})
	_ = feed(t, full, 1, "BEGIN 9")
	if err := feed(t, full, 2, "table public.nokey: INSERT: v[text]:'x'"); err != nil {
		t.Fatal(err)
	}
	want := `0,CDC,{"xid": "9", "change": {"kind": "insert", "schema": "public", "table": "nokey", "columnnames": ["v"], "columntypes": ["text"], "columnvalues": ["x"]}}`
	if len(snk.lines) != 1 || snk.lines[0] != want {
		t.Fatalf("full change records %q, want %q", snk.lines, want)
	}
}

func TestPartitionKeys(t *testing.T) {
	ev := &decode.Event{Kind: decode.KindChange, XID: 42, Op: decode.Insert,
		New: []decode.Column{{Name: "id", Value: []byte("7"), Kind: decode.Number}}}
	tbl := decode.Table{Schema: "public", Name: "Order", Raw: `public."Order"`}
	for mode, want := range map[format.PartitionKey]string{format.ByXID: "42", "": "42", format.ByTable: "public.Order", format.ByPK: "public.Order:7", format.ByConst: "pg2kinesis"} {
		h := newChangeHandler(nil, nil, nil, nil, nil, nil, nil, Config{PartitionKey: mode}, nil)
		if got := h.partition(ev, tbl, []string{"id"}); got != want {
			t.Errorf("--partition-key %q = %q, want %q", mode, got, want)
		}
	}
	if err := checkModes(Config{PartitionKey: "row"}); err == nil {
		t.Error("an unknown partition key is taken for xid; want an error")
	}
	if err := checkModes(Config{Oversize: "drop"}); err == nil {
		t.Error("an unknown oversize policy is taken for fail; want an error")
	}
	long := &decode.Event{New: []decode.Column{{Name: "id", Value: []byte(strings.Repeat("x", 300))}}}
	h := newChangeHandler(nil, nil, nil, nil, nil, nil, nil, Config{PartitionKey: "pk"}, nil)
	if got := h.partition(long, tbl, []string{"id"}); len(got) != 32 {
		t.Errorf("a key over 256 characters gives %q, want its MD5", got)
	}
}

type oversizeSink struct{ captureSink }

func (*oversizeSink) Put(context.Context, sink.Record) error {
	return &sink.OversizeError{Size: 2 << 20, Max: 1 << 20}
}

func TestHandlerOversize(t *testing.T) {
	h, _, _ := testHandler(t, &oversizeSink{}, filter.New(nil, nil), Config{})
	_ = feed(t, h, 1, "BEGIN 5")
	err := feed(t, h, 0x16B3748, "table public.items: INSERT: id[integer]:77")
	for _, want := range []string{"public.items", "key 77", "0/16B3748", "--oversize=skip"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("--oversize=fail: %v, want an error naming %q", err, want)
		}
	}

	h, src, _ := testHandler(t, &oversizeSink{}, filter.New(nil, nil), Config{Oversize: "skip"})
	logs := &testenv.LogBuffer{}
	h.log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	for i, m := range []string{"BEGIN 6", "table public.items: INSERT: id[integer]:78",
		"table public.items: INSERT: id[integer]:79", "table public.items: INSERT: id[integer]:80", "COMMIT 6"} {
		if err := feed(t, h, pglogrepl.LSN(10+i), m); err != nil {
			t.Fatalf("--oversize=skip: %v", err)
		}
	}
	if h.skippedLarge != 3 || src.Flushed() != 14 {
		t.Fatalf("skipped %d, flushed %d; want 3 and the commit flushed", h.skippedLarge, src.Flushed())
	}
	// No per-record logging above debug level: one warning for the table.
	if n := strings.Count(logs.String(), "\n"); n != 1 || !strings.Contains(logs.String(), "key 78") {
		t.Fatalf("%d log lines at info level, want the first skip's warning alone:\n%s", n, logs)
	}
}

// countingSink acknowledges at once and keeps nothing.
type countingSink struct {
	captureSink
	n int
}

func (s *countingSink) Put(_ context.Context, r sink.Record) error {
	s.n++
	s.ack([]uint64{r.Seq})
	return nil
}

// The JSON record of every change carries its transaction's commit LSN and
// time, which wal2json gives on its begin message (the time on each change
// too) and test_decoding not at all.
func TestHandlerCarriesCommitPosition(t *testing.T) {
	run := func(p decode.Plugin, msgs []string) []string {
		t.Helper()
		ps, _ := newParser(p)
		f, _ := format.New("JSON", format.Options{Plugin: p})
		keys := catalog.New(catalogtest.Fixed(testKeys), nil)
		snk := &captureSink{}
		h := newChangeHandler(source.New(source.Config{}), checkpoint.New(0), ps, filter.New(nil, nil), keys, f, snk, Config{}, nil)
		for i, m := range msgs {
			if err := feed(t, h, pglogrepl.LSN(0x100+i), m); err != nil {
				t.Fatal(err)
			}
		}
		return snk.lines
	}
	w := func(action, xid, ts, lsn, rest string) string {
		return `{"action":"` + action + `","xid":` + xid + `,"timestamp":"` + ts + `","lsn":"` + lsn + `"` + rest + `}`
	}
	ins := `,"schema":"public","table":"items","columns":[{"name":"id","type":"integer","value":1}]`
	got := run(decode.Wal2JSON, []string{
		w("B", "7", "2026-11-24 16:07:38.054722+00", "0/169D9E70", `,"nextlsn":"0/169DCC28"`),
		w("I", "7", "2026-11-24 16:07:38.054722+00", "0/104", ins),
		w("C", "7", "2026-11-24 16:07:38.054722+00", "0/169D9E70", `,"nextlsn":"0/169DCC28"`),
		w("B", "8", "2026-11-24 18:00:00.5+02", "0/169DCE78", `,"nextlsn":"0/169DCEA8"`),
		w("I", "8", "2026-11-24 18:00:00.5+02", "0/105", ins),
		w("C", "8", "2026-11-24 18:00:00.5+02", "0/169DCE78", `,"nextlsn":"0/169DCEA8"`),
	})
	want := []string{
		`"xid":7,"lsn":"0/101","commit_lsn":"0/169D9E70","commit_time":"2026-11-24T16:07:38.054722Z",`,
		`"xid":8,"lsn":"0/104","commit_lsn":"0/169DCE78","commit_time":"2026-11-24T16:00:00.500000Z",`,
	}
	if len(got) != 2 || !strings.Contains(got[0], want[0]) || !strings.Contains(got[1], want[1]) {
		t.Fatalf("wal2json records\n%q\nwant them to contain\n%q", got, want)
	}

	got = run(decode.TestDecoding, []string{"BEGIN 9", "table public.items: INSERT: id[integer]:1", "COMMIT 9"})
	if len(got) != 1 || !strings.Contains(got[0], `"xid":9,"lsn":"0/101","commit_lsn":null,"commit_time":null,`) {
		t.Fatalf("test_decoding records %q, want commit_lsn and commit_time null", got)
	}
}

// With debug logging, each transaction is logged once the flush LSN has
// passed its commit, with its latency since the server's commit time; a
// transaction still waiting for an acknowledgement is not.
func TestDeliveryLogged(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	snk := &heldSink{}
	f, err := format.New("CSV", format.Options{Plugin: decode.TestDecoding})
	if err != nil {
		t.Fatal(err)
	}
	keys := catalog.New(catalogtest.Fixed(testKeys), nil)
	tr := checkpoint.New(0)
	h := newChangeHandler(source.New(source.Config{}), tr, testdecoding.New(), filter.New(nil, nil), keys, f, snk, Config{}, log)
	at := time.Now().Add(-1500 * time.Millisecond).UTC().Format("2006-01-02 15:04:05.999999-07")
	for _, m := range []struct {
		lsn  pglogrepl.LSN
		data string
	}{
		{100, "BEGIN 7"}, {110, "table public.items: INSERT: id[integer]:1"}, {120, "COMMIT 7 (at " + at + ")"},
		{130, "BEGIN 8"}, {140, "table public.items: INSERT: id[integer]:2"}, {150, "COMMIT 8 (at " + at + ")"},
	} {
		if err := feed(t, h, m.lsn, m.data); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(logs.String(), "delivered") {
		t.Fatalf("logged before any acknowledgement:\n%s", logs.String())
	}
	tr.Ack(snk.held[0])
	lines := strings.Count(logs.String(), "transaction delivered")
	if lines != 1 || !strings.Contains(logs.String(), "commit_lsn=0/78") || !strings.Contains(logs.String(), "latency_ms=15") {
		t.Fatalf("want one delivery of the commit at 0/78 with a latency of about 1500 ms, got:\n%s", logs.String())
	}
}

// A non-transactional logical message (the heartbeat) is a flush position
// when nothing is in flight, like a keepalive's WAL end; a transactional
// one is part of its transaction, and neither is published.
func TestHandlerMessagesFlushWhenIdle(t *testing.T) {
	snk := &heldSink{}
	h, src, tr := testHandler(t, snk, filter.New(nil, nil), Config{})
	heartbeat := "message: transactional: 0 prefix: pg2kinesis, sz: 4 content:beat"
	if err := feed(t, h, 100, heartbeat); err != nil {
		t.Fatal(err)
	}
	if src.Flushed() != 100 {
		t.Fatalf("flushed %s after a heartbeat with nothing in flight, want 0/64", src.Flushed())
	}
	for i, m := range []string{"BEGIN 9", "table public.items: INSERT: id[integer]:1",
		"message: transactional: 1 prefix: app, sz: 1 content:x", "COMMIT 9"} {
		if err := feed(t, h, pglogrepl.LSN(110+i), m); err != nil {
			t.Fatal(err)
		}
	}
	if err := feed(t, h, 200, heartbeat); err != nil {
		t.Fatal(err)
	}
	if src.Flushed() != 100 || len(snk.held) != 1 {
		t.Fatalf("flushed %s with a record in flight, %d records; want 0/64 and the insert alone", src.Flushed(), len(snk.held))
	}
	tr.Ack(snk.held[0])
	if err := feed(t, h, 300, heartbeat); err != nil {
		t.Fatal(err)
	}
	if src.Flushed() != 300 {
		t.Fatalf("flushed %s after the ack and a heartbeat, want 0/12C", src.Flushed())
	}
}
