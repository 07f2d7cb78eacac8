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
