package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pg2kinesis/pg2kinesis/internal/checkpoint"
	"github.com/pg2kinesis/pg2kinesis/internal/filter"
	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// Every change read is counted once more as published, filtered or
// skipped, by table and operation; a truncate counts once per table.
func TestHandlerCountsChanges(t *testing.T) {
	m := metrics.New("", "")
	snk := &captureSink{}
	h, _, _ := testHandler(t, snk, filter.New(nil, []string{"insert", "truncate"}), Config{Metrics: m})
	for i, msg := range []string{
		"BEGIN 9",
		"table public.items: INSERT: id[integer]:1",
		"table public.items: INSERT: id[integer]:2",
		"table public.items: DELETE: id[integer]:1",
		"table public.nokey: INSERT: v[text]:'x'",
		"table public.items: TRUNCATE: (no-flags)",
		"COMMIT 9",
	} {
		if err := feed(t, h, pglogrepl.LSN(1+i), msg); err != nil {
			t.Fatal(err)
		}
	}
	want := `
# HELP pg2kinesis_changes_filtered_total Changes left out by --table-pat or --operations.
# TYPE pg2kinesis_changes_filtered_total counter
pg2kinesis_changes_filtered_total{op="delete",table="public.items"} 1
# HELP pg2kinesis_changes_published_total Changes handed to the sink as records.
# TYPE pg2kinesis_changes_published_total counter
pg2kinesis_changes_published_total{op="insert",table="public.items"} 2
pg2kinesis_changes_published_total{op="truncate",table="public.items"} 1
# HELP pg2kinesis_changes_read_total Changes decoded from the slot (a TRUNCATE counts once per table).
# TYPE pg2kinesis_changes_read_total counter
pg2kinesis_changes_read_total{op="delete",table="public.items"} 1
pg2kinesis_changes_read_total{op="insert",table="public.items"} 2
pg2kinesis_changes_read_total{op="insert",table="public.nokey"} 1
pg2kinesis_changes_read_total{op="truncate",table="public.items"} 1
# HELP pg2kinesis_changes_skipped_total Changes not published: reason no_primary_key or oversize.
# TYPE pg2kinesis_changes_skipped_total counter
pg2kinesis_changes_skipped_total{op="insert",reason="no_primary_key",table="public.nokey"} 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"pg2kinesis_changes_read_total", "pg2kinesis_changes_published_total",
		"pg2kinesis_changes_filtered_total", "pg2kinesis_changes_skipped_total"); err != nil {
		t.Fatal(err)
	}
	if len(snk.lines) != 3 || h.stats.changes.Load() != 5 || h.stats.published.Load() != 3 || h.stats.xid.Load() != 9 {
		t.Fatalf("records %q, stats read %d published %d xid %d", snk.lines, h.stats.changes.Load(), h.stats.published.Load(), h.stats.xid.Load())
	}
}

// The lag is the age of the oldest transaction read and not delivered;
// with none waiting, the last delivered one's, until a keepalive says the
// server has nothing more to send: then 0.
func TestLagSeconds(t *testing.T) {
	snk := &heldSink{}
	h, _, tr := testHandler(t, snk, filter.New(nil, nil), Config{})
	stamp := func(ago time.Duration) string {
		return time.Now().Add(-ago).UTC().Format("2006-01-02 15:04:05.999999-07")
	}
	for i, msg := range []string{
		"BEGIN 7", "table public.items: INSERT: id[integer]:1", "COMMIT 7 (at " + stamp(3*time.Second) + ")",
		"BEGIN 8", "table public.items: INSERT: id[integer]:2", "COMMIT 8 (at " + stamp(time.Second) + ")",
	} {
		if err := feed(t, h, pglogrepl.LSN(100+i), msg); err != nil {
			t.Fatal(err)
		}
	}
	near := func(got, want time.Duration) bool { return got > want-200*time.Millisecond && got < want+time.Second }
	if lag := h.delivery.lag(time.Now()); !near(lag, 3*time.Second) {
		t.Fatalf("lag with both transactions waiting: %s, want about 3s", lag)
	}
	tr.Ack(snk.held[0])
	if lag := h.delivery.lag(time.Now()); !near(lag, time.Second) {
		t.Fatalf("lag with the second transaction waiting: %s, want about 1s", lag)
	}
	tr.Ack(snk.held[1])
	if lag := h.delivery.lag(time.Now()); !near(lag, time.Second) {
		t.Fatalf("lag with everything read delivered, the server not yet idle: %s, want the last commit's age, about 1s", lag)
	}
	// A reply to our request (or the server's ping) does not say the
	// server has nothing more to send.
	if err := h.HandleKeepalive(t.Context(), 190, false); err != nil {
		t.Fatal(err)
	}
	if lag := h.delivery.lag(time.Now()); !near(lag, time.Second) {
		t.Fatalf("lag after a keepalive that answers a request: %s, want the last commit's age, about 1s", lag)
	}
	if err := h.HandleKeepalive(t.Context(), 200, true); err != nil {
		t.Fatal(err)
	}
	if lag := h.delivery.lag(time.Now()); lag != 0 {
		t.Fatalf("lag with everything delivered and the server idle: %s, want 0", lag)
	}
	if err := feed(t, h, 210, "BEGIN 9"); err != nil {
		t.Fatal(err)
	}
	if lag := h.delivery.lag(time.Now()); !near(lag, time.Second) {
		t.Fatalf("lag once the server sends again: %s, want the last commit's age, about 1s", lag)
	}
}

// A heartbeat dates the stream when nothing waits: the lag is its age, not
// that of the last real commit, until a keepalive makes it 0.
func TestLagSecondsFromHeartbeat(t *testing.T) {
	snk := &heldSink{}
	h, _, tr := testHandler(t, snk, filter.New(nil, nil), Config{})
	message := func(content string) string {
		return fmt.Sprintf("message: transactional: 0 prefix: pg2kinesis, sz: %d content:%s", len(content), content)
	}
	old := time.Now().Add(-time.Hour).UTC().Format("2006-01-02 15:04:05.999999-07")
	for i, msg := range []string{"BEGIN 7", "table public.items: INSERT: id[integer]:1", "COMMIT 7 (at " + old + ")"} {
		if err := feed(t, h, pglogrepl.LSN(100+i), msg); err != nil {
			t.Fatal(err)
		}
	}
	tr.Ack(snk.held[0])
	if lag := h.delivery.lag(time.Now()); lag < time.Hour {
		t.Fatalf("lag before any heartbeat: %s, want the last commit's age, an hour", lag)
	}
	if err := feed(t, h, 200, message("not a time")); err != nil {
		t.Fatal(err)
	}
	if lag := h.delivery.lag(time.Now()); lag < time.Hour {
		t.Fatalf("lag after a message that is no heartbeat: %s, want it unchanged", lag)
	}
	if err := feed(t, h, 300, message(time.Now().Add(-2*time.Second).UTC().Format(time.RFC3339Nano))); err != nil {
		t.Fatal(err)
	}
	if lag := h.delivery.lag(time.Now()); lag < 2*time.Second || lag > 3*time.Second {
		t.Fatalf("lag after a heartbeat written 2s ago: %s, want about 2s", lag)
	}
}

// The progress line gives the window's and the cumulative counts.
func TestProgressLine(t *testing.T) {
	logs := &testenv.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	snk := &captureSink{}
	h, src, tr := testHandler(t, snk, filter.New(nil, nil), Config{})
	for i, msg := range []string{"BEGIN 12", "table public.items: INSERT: id[integer]:1", "COMMIT 12"} {
		if err := feed(t, h, pglogrepl.LSN(1+i), msg); err != nil {
			t.Fatal(err)
		}
	}
	o := &observer{src: src, tracker: tr, delivery: h.delivery, stats: h.stats}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- o.progress(ctx, 20*time.Millisecond, log) }()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(logs.String(), "msg=progress") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("want two progress lines, got:\n%s", logs.String())
	}
	for i, want := range []string{
		"changes=1 published=1 mb_in=0 mb_out=0 total_changes=1 total_published=1 ",
		"changes=0 published=0 mb_in=0 mb_out=0 total_changes=1 total_published=1 ",
	} {
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], "xid=12 flush_lsn=0/3 in_flight=0 lag_bytes=-1 lag_seconds=0") {
			t.Errorf("progress line %d:\n%s\nwant %q and the xid, flush LSN and lag", i, lines[i], want)
		}
	}
}

// The acknowledgement watch dates the oldest wait: from the last sample
// that saw nothing waiting or the watermark move.
func TestAckWatch(t *testing.T) {
	tr := checkpoint.New(0)
	a := &ackWatch{tracker: tr}
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	if n, since := a.sample(at(0)); n != 0 || !since.Equal(at(0)) {
		t.Fatalf("idle: %d since %v", n, since)
	}
	first, second := tr.Record(), tr.Record()
	if n, since := a.sample(at(1)); n != 2 || !since.Equal(at(0)) {
		t.Fatalf("records waiting: %d since %v, want 2 since the idle sample", n, since)
	}
	if _, since := a.sample(at(5)); !since.Equal(at(0)) {
		t.Fatalf("still waiting: since %v, want the idle sample", since)
	}
	tr.Ack(first)
	if n, since := a.sample(at(6)); n != 1 || !since.Equal(at(6)) {
		t.Fatalf("after an ack: %d since %v, want 1 since now", n, since)
	}
	tr.Ack(second)
	if n, since := a.sample(at(9)); n != 0 || !since.Equal(at(9)) {
		t.Fatalf("all acked: %d since %v", n, since)
	}
}
