package snapshot

import (
	"slices"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

var items = catalog.Name{Schema: "public", Table: "items"}

// rowsOf are rows of items (id text, the key) with these ids.
func rowsOf(ids ...string) *Rows {
	tb := &Table{name: items, plugin: decode.TestDecoding, table: decode.Table{Schema: "public", Name: "items", Raw: "public.items"},
		cols: []column{{name: "id", typ: "text", style: plain}}, key: []keyColumn{{name: "id"}}}
	r := newRows(tb, len(ids), 0)
	for _, id := range ids {
		_ = r.add([][]byte{[]byte(id), []byte(id)})
	}
	return r
}

func rowKey(ev *decode.Event, cols []string) string { return string(ev.New[0].Value) }

func keysOf(ids ...string) func([]string) ([]string, bool) {
	return func([]string) ([]string, bool) { return ids, len(ids) > 0 }
}

// take takes the chunk m is about and publishes its rows: their ids.
func take(t *testing.T, x *Exchange, m Mark) (*Handoff, []string) {
	t.Helper()
	c := x.Take(m)
	if c == nil {
		return nil, nil
	}
	var ids []string
	if err := c.Each(rowKey, func(ev *decode.Event) error {
		ids = append(ids, string(ev.New[0].Value))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return c, ids
}

// The rows a change names between the watermarks are dropped; other
// tables' changes, and changes before the low or after the high
// watermark, drop nothing.
func TestExchangeDropsRowsChangedInTheWindow(t *testing.T) {
	x := NewExchange("s", "run1")
	h := x.Expect(items, []string{"id"})
	mark := Mark{Slot: "s", Run: "run1", Chunk: h.ID, Table: items}
	x.Touch(items, keysOf("1")) // before the low watermark
	if x.Watching() {
		t.Fatal("watching before the low watermark")
	}
	x.Open(mark)
	if !x.Watching() {
		t.Fatal("not watching after the low watermark")
	}
	x.Touch(items, keysOf("2", "3")) // an update from 3 to 2
	x.Touch(catalog.Name{Schema: "public", Table: "other"}, keysOf("4"))
	x.Fill(h, rowsOf("1", "2", "3", "4"), Invisible{})
	high := mark
	high.High = true
	c, rows := take(t, x, high)
	if c != h || c.Spoiled || !slices.Equal(rows, []string{"1", "4"}) || c.Dropped != 2 {
		t.Fatalf("took %v, spoiled %v, dropped %d; want rows 1 and 4", rows, c.Spoiled, c.Dropped)
	}
	if x.Watching() {
		t.Fatal("still watching after the high watermark")
	}
	x.Touch(items, keysOf("1")) // after: nothing to do
	if c, rows := take(t, x, high); c != nil || rows != nil {
		t.Fatal("a high watermark read again took the chunk twice")
	}
	select {
	case <-h.Done():
		t.Fatal("done before the commit")
	default:
	}
	x.Commit(1, 900)
	<-h.Done()
	if h.CommitLSN != 900 {
		t.Fatalf("commit LSN %s, want 0/384", h.CommitLSN)
	}
}

// A change in the window that does not carry the key spoils the chunk: it
// is read again, and nothing of it is published.
func TestExchangeSpoilsOnAChangeWithoutItsKey(t *testing.T) {
	x := NewExchange("s", "r")
	h := x.Expect(items, []string{"id"})
	m := Mark{Slot: "s", Run: "r", Chunk: h.ID, Table: items}
	x.Open(m)
	x.Touch(items, keysOf()) // a delete under REPLICA IDENTITY NOTHING
	x.Fill(h, rowsOf("1"), Invisible{})
	m.High = true
	c, rows := take(t, x, m)
	if c == nil || !c.Spoiled || rows != nil {
		t.Fatalf("chunk %v rows %v: want it spoiled, no rows", c, rows)
	}
	x.Commit(1, 10)
	<-h.Done()
}

// A keyless table's chunk drops nothing and is never spoiled: it is read
// without the guarantee.
func TestExchangeKeylessChunkKeepsEveryRow(t *testing.T) {
	x := NewExchange("s", "r")
	h := x.Expect(items, nil)
	m := Mark{Slot: "s", Run: "r", Chunk: h.ID, Table: items}
	x.Open(m)
	x.Touch(items, keysOf())
	x.Fill(h, rowsOf("1", "2"), Invisible{})
	m.High = true
	if c, rows := take(t, x, m); c == nil || c.Spoiled || len(rows) != 2 {
		t.Fatalf("keyless chunk: %+v, %d rows; want both rows", c, len(rows))
	}
}

// Marks of another run (a process that is gone, read again after a
// restart) or another slot's process are ignored.
func TestExchangeIgnoresOtherRunsMarks(t *testing.T) {
	x := NewExchange("s", "mine")
	h := x.Expect(items, []string{"id"})
	x.Fill(h, rowsOf("1"), Invisible{})
	for _, m := range []Mark{
		{Slot: "s", Run: "gone", Chunk: h.ID, Table: items},
		{Slot: "other", Run: "mine", Chunk: h.ID, Table: items},
		{Slot: "s", Run: "mine", Chunk: h.ID + 1, Table: items},
	} {
		x.Open(m)
		m.High = true
		if c, _ := take(t, x, m); c != nil {
			t.Fatalf("took chunk for mark %+v", m)
		}
	}
	if x.Watching() {
		t.Fatal("a window opened by another run's mark")
	}
}

// A low watermark read again after a reconnect keeps the window's keys:
// the changes between it and the flush LSN are not sent again.
func TestExchangeReopenKeepsTheWindow(t *testing.T) {
	x := NewExchange("s", "r")
	h := x.Expect(items, []string{"id"})
	m := Mark{Slot: "s", Run: "r", Chunk: h.ID, Table: items}
	x.Open(m)
	x.Touch(items, keysOf("1"))
	x.Open(m)
	x.Fill(h, rowsOf("1", "2"), Invisible{})
	m.High = true
	if _, rows := take(t, x, m); !slices.Equal(rows, []string{"2"}) {
		t.Fatalf("rows %v, want 2 alone", rows)
	}
}

// Forget closes a window whose chunk will not come.
func TestExchangeForget(t *testing.T) {
	x := NewExchange("s", "r")
	h := x.Expect(items, []string{"id"})
	x.Open(Mark{Slot: "s", Run: "r", Chunk: h.ID, Table: items})
	x.Forget(h)
	if x.Watching() {
		t.Fatal("watching a forgotten chunk")
	}
}

func TestMarkRoundTrip(t *testing.T) {
	m := Mark{Slot: "s", Run: "r", Chunk: 7, High: true, Table: catalog.Name{Schema: `we"ird`, Table: "t.x"}}
	got, err := ParseMark([]byte(m.Content()))
	if err != nil || got.Table != m.Table || got.Chunk != 7 || !got.High || got.Run != "r" || got.Slot != "s" {
		t.Fatalf("ParseMark(%s) = %+v, %v", m.Content(), got, err)
	}
	for _, bad := range []string{"", "x", `{"run":"r"}`, `{"chunk":1}`} {
		if _, err := ParseMark([]byte(bad)); err == nil {
			t.Errorf("ParseMark(%q) accepted", bad)
		}
	}
}

// A transaction the chunk's read saw as running spoils the chunk when the
// stream read its commit before the low watermark: its changes, older than
// the window, are newer than the chunk's rows. One read after the low
// watermark is in the window, and names its rows there.
func TestExchangeSpoilsOnATransactionInvisibleToTheRead(t *testing.T) {
	for _, tc := range []struct {
		name       string
		before     uint32 // committed before the low watermark
		mark       bool   // a watermark's transaction (another chunk's)
		invisible  Invisible
		wantSpoilt bool
	}{
		{"committed before, invisible", 77, false, Invisible{Running: []uint32{5, 77}, From: 80}, true},
		{"committed before, visible", 77, false, Invisible{Running: []uint32{5}, From: 80}, false},
		{"none running", 77, false, Invisible{From: 80}, false},
		{"running, committed after", 77, false, Invisible{Running: []uint32{78}, From: 80}, false},
		// A later xid than the read's snapshot knew of that wrote its
		// commit record before the low watermark's: at or past xmax.
		{"committed before, at xmax", 77, false, Invisible{From: 77}, true},
		{"committed before, past xmax", 77, false, Invisible{Running: []uint32{5}, From: 60}, true},
		{"committed before, past xmax across the wrap", 2, false, Invisible{From: 4294967290}, true},
		{"committed before, before xmax across the wrap", 4294967290, false, Invisible{From: 2}, false},
		// Another reader's watermark changes no row: invisible or not,
		// it leaves the chunk as it is.
		{"a watermark committed before, invisible", 77, true, Invisible{Running: []uint32{5, 77}, From: 80}, false},
		{"a watermark committed before, at xmax", 77, true, Invisible{From: 77}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := NewExchange("s", "r")
			if tc.mark {
				other := x.Expect(items, []string{"id"})
				x.Open(Mark{Slot: "s", Run: "r", Chunk: other.ID, Table: items})
			}
			x.Commit(tc.before, 10)
			h := x.Expect(items, []string{"id"})
			m := Mark{Slot: "s", Run: "r", Chunk: h.ID, Table: items}
			x.Open(m)
			x.Commit(78, 20)
			x.Fill(h, rowsOf("1"), tc.invisible)
			m.High = true
			if c, _ := take(t, x, m); c.Spoiled != tc.wantSpoilt {
				t.Fatalf("spoiled %v, want %v", c.Spoiled, tc.wantSpoilt)
			}
		})
	}
}

// A chunk taken and not committed when the stream starts again may have
// been cut off while its rows were published: it is spoiled, and its
// worker reads it again.
func TestExchangeRestartSpoilsATakenChunk(t *testing.T) {
	x := NewExchange("s", "r")
	h := x.Expect(items, []string{"id"})
	m := Mark{Slot: "s", Run: "r", Chunk: h.ID, Table: items}
	x.Open(m)
	x.Fill(h, rowsOf("1"), Invisible{})
	m.High = true
	if c, rows := take(t, x, m); c == nil || len(rows) != 1 {
		t.Fatal("chunk not taken")
	}
	x.Restart()
	if c, _ := take(t, x, m); c != nil {
		t.Fatal("the high watermark read again took the chunk again")
	}
	x.Commit(9, 100)
	<-h.Done()
	if !h.Spoiled {
		t.Fatal("a chunk cut off by a restart is not spoiled")
	}
}

// A transaction that holds a watermark and changes rows (no watermark of
// pg2kinesis is written so, but a message with its prefix could be) is
// among the recent ones: invisible to a chunk's read, it spoils it.
func TestExchangeMarkedTransactionThatChangesRows(t *testing.T) {
	x := NewExchange("s", "r")
	other := x.Expect(items, []string{"id"})
	x.Open(Mark{Slot: "s", Run: "r", Chunk: other.ID, Table: items})
	x.Changed()
	x.Commit(77, 10)
	h := x.Expect(items, []string{"id"})
	m := Mark{Slot: "s", Run: "r", Chunk: h.ID, Table: items}
	x.Open(m)
	x.Commit(78, 20)
	x.Fill(h, rowsOf("1"), Invisible{Running: []uint32{77}, From: 80})
	m.High = true
	if c, _ := take(t, x, m); !c.Spoiled {
		t.Fatal("not spoiled by a transaction with a watermark and a change, invisible to the read")
	}
}
