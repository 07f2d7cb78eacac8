package snapshot

import (
	"slices"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// Rows give back each value as it was added: NULL apart from the empty
// string, in any position, however the buffer grew; the key's text is the
// key columns' values.
func TestRowsKeepValues(t *testing.T) {
	tb := &Table{plugin: decode.TestDecoding, table: decode.Table{Schema: "public", Name: "t", Raw: "public.t"},
		cols: []column{{name: "a", typ: "text"}, {name: "b", typ: "text"}},
		key:  []keyColumn{{name: "a"}, {name: "b"}}}
	in := [][][]byte{
		{nil, []byte("x"), nil, []byte("x")},
		{[]byte(""), nil, []byte(""), nil},
		{[]byte("long value"), []byte(""), []byte("long value"), []byte("")},
		{nil, nil, nil, nil},
	}
	r := newRows(tb, 1, 1) // too small: it grows
	for _, v := range in {
		if err := r.add(v); err != nil {
			t.Fatal(err)
		}
	}
	if r.Len() != len(in) {
		t.Fatalf("Len %d, want %d", r.Len(), len(in))
	}
	vals := make([][]byte, r.width)
	for i, want := range in {
		r.row(i, vals)
		for j := range want {
			if (vals[j] == nil) != (want[j] == nil) || string(vals[j]) != string(want[j]) {
				t.Errorf("row %d value %d = %q (nil %t), want %q (nil %t)", i, j, vals[j], vals[j] == nil, want[j], want[j] == nil)
			}
		}
	}
	if got := r.keyText(2); !slices.Equal(got, []string{"long value", ""}) {
		t.Errorf("keyText = %q", got)
	}
	var nulls []bool
	if err := r.Each(func(ev *decode.Event) error {
		if ev.Op != decode.Read || len(ev.New) != 2 {
			t.Fatalf("event %s with %d columns", ev.Op, len(ev.New))
		}
		nulls = append(nulls, ev.New[0].Null, ev.New[1].Null)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, false, true, false, false, true, true}; !slices.Equal(nulls, want) {
		t.Errorf("nulls %v, want %v", nulls, want)
	}
	var empty *Rows
	if empty.Len() != 0 || empty.Size() != 0 || empty.Each(func(*decode.Event) error { t.Fatal("a row of none"); return nil }) != nil {
		t.Error("nil Rows are not empty")
	}
}

// A table that prints no column still has rows: each is an event without
// columns.
func TestRowsOfNoColumns(t *testing.T) {
	tb := &Table{plugin: decode.TestDecoding, table: decode.Table{Schema: "public", Name: "empty", Raw: "public.empty"}}
	r := newRows(tb, 3, 0)
	for range 3 {
		if err := r.add(nil); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	if err := r.Each(func(ev *decode.Event) error {
		if len(ev.New) != 0 || ev.Op != decode.Read {
			t.Errorf("event %s with %d columns", ev.Op, len(ev.New))
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 3 || n != 3 {
		t.Fatalf("Len %d, %d events; want 3 rows", r.Len(), n)
	}
}

// The next chunk's limit: a table's first chunk is small, the next grow
// at most fourfold, up to the rows that fit the workers' share of the
// bytes, and never past --snapshot-chunk-rows.
func TestWorkerLimit(t *testing.T) {
	for _, tc := range []struct {
		name               string
		chunkRows, reading int32
		rowSize, rows      int
		want               int
	}{
		{"first chunk", 100000, 1, 0, 0, firstChunkRows},
		{"first chunk, fewer asked", 10, 1, 0, 0, 10},
		{"grows fourfold", 100000, 1, 100, 100, 400},
		{"bounded by bytes", 100000, 1, 1000, 100000, chunkBytes / 1000},
		{"two workers share the bytes", 100000, 2, 1000, 100000, chunkBytes / 2 / 1000},
		{"bounded by rows", 5000, 1, 10, 100000, 5000},
		{"a row larger than the bound", 100000, 1, 2 * chunkBytes, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Runner{cfg: Config{ChunkRows: int(tc.chunkRows)}}
			r.reading.Store(tc.reading)
			w := &worker{r: r, rowSize: tc.rowSize, rows: tc.rows}
			lim := w.limit()
			if lim.Rows != tc.want || lim.Bytes != chunkBytes/int(tc.reading) {
				t.Errorf("limit %+v, want %d rows and %d bytes", lim, tc.want, chunkBytes/int(tc.reading))
			}
		})
	}
}

// Rows reused for another chunk, of another table, keep their buffers
// and none of their rows.
func TestRowsReuse(t *testing.T) {
	wide := &Table{plugin: decode.TestDecoding, table: decode.Table{Schema: "public", Name: "w", Raw: "public.w"},
		cols: []column{{name: "a", typ: "text"}, {name: "b", typ: "text"}}, key: []keyColumn{{name: "a"}}}
	narrow := &Table{plugin: decode.TestDecoding, table: decode.Table{Schema: "public", Name: "n", Raw: "public.n"},
		cols: []column{{name: "k", typ: "text"}}, key: []keyColumn{{name: "k"}}}
	r := newRows(wide, 2, 64)
	for _, v := range [][][]byte{{[]byte("a1"), []byte("b1"), []byte("a1")}, {[]byte("a2"), nil, []byte("a2")}} {
		if err := r.add(v); err != nil {
			t.Fatal(err)
		}
	}
	data := &r.data[:1][0]
	again := Limit{Size: 32, recycled: r}.rows(narrow, 1)
	if again != r || again.Len() != 0 || again.Size() != 0 || again.width != 2 || again.t != narrow {
		t.Fatalf("reused rows: %d rows, size %d, width %d, table %v", again.Len(), again.Size(), again.width, again.t.name)
	}
	if err := again.add([][]byte{[]byte("z"), []byte("z")}); err != nil {
		t.Fatal(err)
	}
	if &again.data[:1][0] != data {
		t.Error("the text buffer was not reused")
	}
	if got := again.keyText(0); !slices.Equal(got, []string{"z"}) || again.Len() != 1 {
		t.Errorf("reused rows hold %d rows, key %q", again.Len(), got)
	}
	// Too small for the next chunk: a new buffer.
	bigger := Limit{Size: 1 << 10, recycled: again}.rows(narrow, 1)
	if cap(bigger.data) < 1<<10 {
		t.Errorf("reused rows have room for %d bytes, want %d", cap(bigger.data), 1<<10)
	}
}
