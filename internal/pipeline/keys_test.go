package pipeline

import (
	"context"
	"slices"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// countingSource is a catalog whose loads a test counts; the catalog it
// serves changes when next is set.
type countingSource struct {
	keys, next catalog.Keys
	loads      int
}

func (s *countingSource) Load(context.Context) (catalog.Keys, error) {
	s.loads++
	if s.next != nil {
		s.keys, s.next = s.next, nil
	}
	return s.keys, nil
}

func (s *countingSource) Version(context.Context) (string, error) { return "", nil }

func cols(names ...string) []decode.Column {
	out := make([]decode.Column, len(names))
	for i, n := range names {
		out[i] = decode.Column{Name: n, Value: []byte("1")}
	}
	return out
}

func TestKeyRule(t *testing.T) {
	tbl := decode.Table{Schema: "public", Name: "t", Raw: "public.t"}
	pk := catalog.Keys{{Schema: "public", Table: "t"}: catalog.PK("id")}
	byIndex := catalog.Keys{{Schema: "public", Table: "t"}: {Columns: []string{"u"}, Index: true}}
	noKey := catalog.Keys{{Schema: "public", Table: "t"}: {}}
	fullNoKey := catalog.Keys{{Schema: "public", Table: "t"}: {Full: true}}
	none := catalog.Keys{}
	for _, tc := range []struct {
		name    string
		catalog catalog.Keys
		next    catalog.Keys // what a reload finds
		ev      decode.Event
		want    []string
		how     keying
		loads   int // reloads after the start's
	}{
		{"test_decoding insert", pk, nil, decode.Event{Op: decode.Insert, New: cols("id", "v")}, []string{"id"}, keyed, 0},
		{"test_decoding delete by index", byIndex, nil, decode.Event{Op: decode.Delete, Old: cols("u")}, []string{"u"}, keyed, 0},
		{"test_decoding keyless", noKey, nil, decode.Event{Op: decode.Insert, New: cols("v")}, nil, keyless, 0},
		{"unknown table, insert: no key", none, nil, decode.Event{Op: decode.Insert, New: cols("id", "v")}, nil, unknownTable, 1},
		{"unknown table, delete: the old key it carries", none, nil, decode.Event{Op: decode.Delete, Old: cols("id")}, []string{"id"}, unknownTable, 1},
		{"a key column missing: reload", pk, catalog.Keys{{Schema: "public", Table: "t"}: catalog.PK("uid")},
			decode.Event{Op: decode.Insert, New: cols("uid", "v")}, []string{"uid"}, keyed, 1},
		{"an old key of a keyless table: reload", noKey, pk, decode.Event{Op: decode.Delete, Old: cols("id")}, []string{"id"}, keyed, 1},
		// Under REPLICA IDENTITY FULL every update and delete of a keyless
		// table carries its old row: no reload (each such table would
		// otherwise cost one, and a second's wait, at its first change).
		{"an old row of a keyless table under FULL proves nothing", fullNoKey, pk,
			decode.Event{Op: decode.Delete, Old: cols("id", "v")}, nil, keyless, 0},
		{"a delete without old key proves nothing", pk, nil, decode.Event{Op: decode.Delete}, []string{"id"}, keyed, 0},
		{"a truncate proves nothing", pk, nil, decode.Event{Op: decode.Truncate}, []string{"id"}, keyed, 0},
		// A snapshot's read carries the row as an insert does, and is keyed
		// as one, so that --partition-key pk puts it with the row's changes.
		{"read: the key from the row", pk, nil, decode.Event{Op: decode.Read, New: cols("id", "v")}, []string{"id"}, keyed, 0},
		{"read of an index-keyed table", byIndex, nil, decode.Event{Op: decode.Read, New: cols("id", "u")}, []string{"u"}, keyed, 0},
		{"read of a keyless table", noKey, nil, decode.Event{Op: decode.Read, New: cols("v")}, nil, keyless, 0},
		{"read without a key column: reload", pk, catalog.Keys{{Schema: "public", Table: "t"}: catalog.PK("uid")},
			decode.Event{Op: decode.Read, New: cols("uid", "v")}, []string{"uid"}, keyed, 1},
		{"unknown table, read: no key", none, nil, decode.Event{Op: decode.Read, New: cols("id", "v")}, nil, unknownTable, 1},
		{"pgoutput identity", none, nil, decode.Event{Op: decode.Insert, New: cols("k"), IdentityKey: []string{"k"}}, []string{"k"}, keyed, 0},
		{"wal2json primary key as of the change", pk, nil,
			decode.Event{Op: decode.Insert, New: cols("uid"), KeyStated: true, PrimaryKey: []string{"uid"}}, []string{"uid"}, keyed, 0},
		{"wal2json no primary key", pk, nil, decode.Event{Op: decode.Insert, New: cols("id"), KeyStated: true}, nil, keyless, 0},
		{"wal2json insert of an index-keyed table", byIndex, nil,
			decode.Event{Op: decode.Insert, New: cols("id", "u"), KeyStated: true, PrimaryKey: []string{"id"}}, []string{"u"}, keyed, 0},
		{"wal2json delete by an index the catalog does not know", pk, nil,
			decode.Event{Op: decode.Delete, Old: cols("u"), KeyStated: true, PrimaryKey: []string{"id"}}, []string{"u"}, keyed, 0},
		{"wal2json full identity: the primary key", pk, nil,
			decode.Event{Op: decode.Delete, Old: cols("id", "v"), KeyStated: true, PrimaryKey: []string{"id"}}, []string{"id"}, keyed, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &countingSource{keys: tc.catalog}
			keys := catalog.New(src, nil)
			if err := keys.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			src.next = tc.next
			h := &changeHandler{keys: keys}
			ev := tc.ev
			got, how, err := h.key(context.Background(), &ev, tbl)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) || how != tc.how {
				t.Errorf("key %q (%d), want %q (%d)", got, how, tc.want, tc.how)
			}
			if src.loads-1 != tc.loads {
				t.Errorf("%d reloads, want %d", src.loads-1, tc.loads)
			}
		})
	}
}
