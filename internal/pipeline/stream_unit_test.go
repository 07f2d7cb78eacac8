package pipeline

import (
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/catalog/catalogtest"
	"github.com/pg2kinesis/pg2kinesis/internal/checkpoint"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/decode/decodetest"
	"github.com/pg2kinesis/pg2kinesis/internal/decode/pgoutput"
	"github.com/pg2kinesis/pg2kinesis/internal/filter"
	"github.com/pg2kinesis/pg2kinesis/internal/format"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
	"github.com/pg2kinesis/pg2kinesis/internal/spool"
)

// streamingCorpus is a real protocol 2 session with streamed, aborted and
// partly rolled back transactions (decode/pgoutput/testdata/streaming.sql).
func streamingCorpus(t *testing.T) []decodetest.Message {
	return decodetest.ReadCorpus(t, "../decode/pgoutput/testdata/pg15-streaming.txt", hex.DecodeString)
}

func pgoutputHandler(t *testing.T) (*changeHandler, *captureSink, *checkpoint.Tracker) {
	t.Helper()
	f, err := format.New("CSV", format.Options{Plugin: decode.PGOutput})
	if err != nil {
		t.Fatal(err)
	}
	keys := catalog.New(catalogtest.Fixed(catalog.Keys{}), nil)
	src := source.New(source.Config{})
	tr := checkpoint.New(0)
	snk := &captureSink{ack: func(seqs []uint64) { tr.Ack(seqs...) }}
	p := pgoutput.New()
	h := newChangeHandler(src, tr, p, filter.New(nil, nil), keys, f, snk, Config{}, nil)
	h.streams = &streams{parser: p, spool: spool.New(t.TempDir())}
	t.Cleanup(func() { _ = h.streams.spool.Close() })
	return h, snk, tr
}

func feedAll(t *testing.T, h *changeHandler, msgs []decodetest.Message) {
	t.Helper()
	for _, m := range msgs {
		if err := h.HandleData(t.Context(), pglogrepl.XLogData{WALStart: m.LSN, WALData: m.Data}); err != nil {
			t.Fatalf("message at %s: %v", m.LSN, err)
		}
	}
}

// TestStreamedRecords checks the records of the streaming session: the
// committed rows, in order, and none of the aborted ones (ids 1001-1600 in
// an aborted transaction, 2501-3100 in a rolled back subtransaction).
func TestStreamedRecords(t *testing.T) {
	h, snk, tr := pgoutputHandler(t)
	msgs := streamingCorpus(t)
	feedAll(t, h, msgs)
	got := snk.snapshot()
	if len(got) != 1201 {
		t.Fatalf("%d records, want 1201: %q …", len(got), got[:min(3, len(got))])
	}
	var want []string
	add := func(first, from, to int) { // the rows from..to, in the transaction of record first
		xid := strings.Split(got[first], ",")[2]
		for i := from; i <= to; i++ {
			want = append(want, "0,CDC,"+xid+",public.big,INSERT,"+strconv.Itoa(i))
		}
	}
	add(0, 1, 600)
	add(600, 2001, 2300)
	add(900, 3501, 3800)
	add(1200, 4001, 4001)
	if !slices.Equal(got, want) {
		t.Fatalf("records differ:\n%s", lineDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
	}
	if last := msgs[len(msgs)-1].LSN; tr.Flush() < last {
		t.Errorf("flush LSN %s, want the last commit %s", tr.Flush(), last)
	}
}

// TestStreamRestartsAfterReconnect cuts the session in the middle of the
// first streamed transaction and plays it again from the start, as the
// server does after a reconnect: the records come out once, not twice.
func TestStreamRestartsAfterReconnect(t *testing.T) {
	msgs := streamingCorpus(t)
	h, snk, _ := pgoutputHandler(t)
	feedAll(t, h, msgs[:200])
	if len(snk.snapshot()) != 0 {
		t.Fatal("records before the first commit")
	}
	h.SessionStart()
	feedAll(t, h, msgs)
	ref, refSnk, _ := pgoutputHandler(t)
	feedAll(t, ref, msgs)
	if got, want := snk.snapshot(), refSnk.snapshot(); !slices.Equal(got, want) {
		t.Fatalf("after a restart: %d records, want %d", len(got), len(want))
	}
}
