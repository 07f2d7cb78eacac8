package pipeline

import (
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/filter"
	"github.com/pg2kinesis/pg2kinesis/internal/snapshot"
)

func watermarkLine(m snapshot.Mark) string {
	c := m.Content()
	return fmt.Sprintf("message: transactional: 1 prefix: %s, sz: %d content:%s", snapshot.Prefix, len(c), c)
}

// events are a chunk's rows, as snapshot.Rows gives them.
type events []decode.Event

func (e events) Each(fn func(*decode.Event) error) error {
	for i := range e {
		if err := fn(&e[i]); err != nil {
			return err
		}
	}
	return nil
}

func readRow(id string) decode.Event {
	return decode.Event{Kind: decode.KindChange, Op: decode.Read,
		Table: decode.Table{Schema: "public", Name: "items", Raw: "public.items"},
		New:   []decode.Column{{Name: "id", Type: "integer", Value: []byte(id), Kind: decode.Number}}}
}

// A chunk is published at its high watermark, in that transaction, without
// the rows changed between its watermarks (their changes, read in the
// stream, win), and the worker learns the commit past which it is
// delivered. Changes of the state table are never published.
func TestSnapshotChunkPlacedAtItsHighWatermark(t *testing.T) {
	snk := &captureSink{}
	h, _, tr := testHandler(t, snk, filter.New(nil, nil), Config{})
	x := snapshot.NewExchange("s", "run")
	h.snap, h.stateTable = x, catalog.Name{Schema: "public", Table: "pg2kinesis_snapshot"}
	items := catalog.Name{Schema: "public", Table: "items"}
	c := x.Expect(items, []string{"id"})
	low := snapshot.Mark{Slot: "s", Run: "run", Chunk: c.ID, Table: items}
	high := low
	high.High = true
	feedLines := func(lsn pglogrepl.LSN, lines ...string) {
		t.Helper()
		for i, l := range lines {
			if err := feed(t, h, lsn+pglogrepl.LSN(i), l); err != nil {
				t.Fatal(err)
			}
		}
	}
	feedLines(100, "BEGIN 10", "table public.items: UPDATE: id[integer]:1", "COMMIT 10") // before the window
	feedLines(200, "BEGIN 11", watermarkLine(low), "COMMIT 11")
	feedLines(300, "BEGIN 12", "table public.items: UPDATE: id[integer]:2",
		`table public.pg2kinesis_snapshot: UPDATE: slot[text]:'s' table_schema[text]:'public' table_name[text]:'items'`, "COMMIT 12")
	x.Fill(c, events{readRow("1"), readRow("2"), readRow("3")}, snapshot.Invisible{})
	feedLines(400, "BEGIN 13", watermarkLine(high), "COMMIT 13")
	feedLines(500, "BEGIN 14", "table public.items: DELETE: id[integer]:3", "COMMIT 14") // after: wins by order

	want := []string{
		"0,CDC,10,public.items,UPDATE,1",
		"0,CDC,12,public.items,UPDATE,2",
		"0,CDC,13,public.items,READ,1",
		"0,CDC,13,public.items,READ,3",
		"0,CDC,14,public.items,DELETE,3",
	}
	if !slices.Equal(snk.lines, want) {
		t.Fatalf("records:\n%q\nwant\n%q", snk.lines, want)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("the chunk is not done after its watermark's commit")
	}
	if c.CommitLSN != 402 || c.Published != 2 || c.Dropped != 1 {
		t.Fatalf("commit %s, published %d, dropped %d; want 0/192, 2, 1", c.CommitLSN, c.Published, c.Dropped)
	}
	if tr.Flush() != 502 {
		t.Fatalf("flush %s, want 0/1F6", tr.Flush())
	}
}
