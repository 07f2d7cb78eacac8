package snapshot

import (
	"slices"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// The shaping of values that the plugins print differently, without a
// server (the live tests check it against the plugins themselves).
func TestShapeValues(t *testing.T) {
	tbl := decode.Table{Schema: "public", Name: "t", Raw: "public.t"}
	cols := []column{
		{name: "id", typ: "integer", style: number, typOID: oidInt4, typmod: -1, identity: true},
		{name: "f", typ: "double precision", style: number, typOID: oidFloat8, typmod: -1},
		{name: "ok", typ: "boolean", style: boolean, typOID: oidBool, typmod: -1},
		{name: "b", typ: "bytea", style: bytea, typOID: oidBytea, typmod: -1},
		{name: "d", typ: "posint", style: plain, typOID: 16384, typmod: -1},
		{name: "n", typ: "text", style: plain, typOID: 25, typmod: -1},
	}
	row := [][]byte{[]byte("1"), []byte("-Infinity"), []byte("t"), []byte(`\x00ff`), []byte("5"), nil}
	type col struct {
		typ, value string
		kind       decode.ValueKind
		null       bool
	}
	for _, tc := range []struct {
		plugin decode.Plugin
		want   []col
	}{
		{decode.TestDecoding, []col{
			{"integer", "1", decode.Number, false}, {"double precision", "-Infinity", decode.Number, false},
			{"boolean", "true", decode.Bool, false}, {"bytea", `\x00ff`, decode.String, false},
			{"posint", "5", decode.String, false}, {"text", "", decode.String, true},
		}},
		{decode.Wal2JSON, []col{
			{"integer", "1", decode.Number, false}, {"double precision", "", decode.String, true},
			{"boolean", "true", decode.Bool, false}, {"bytea", "00ff", decode.String, false},
			{"posint", "5", decode.String, false}, {"text", "", decode.String, true},
		}},
		// pgoutput names a domain by its base type, which its Type message
		// gives, and leaves a non-finite number a string.
		{decode.PGOutput, []col{
			{"integer", "1", decode.Number, false}, {"double precision", "-Infinity", decode.String, false},
			{"boolean", "true", decode.Bool, false}, {"bytea", `\x00ff`, decode.String, false},
			{"integer", "5", decode.Number, false}, {"text", "", decode.String, true},
		}},
	} {
		t.Run(tc.plugin.String(), func(t *testing.T) {
			tb := &Table{plugin: tc.plugin, table: tbl, cols: cols, primaryKey: []string{"id"}, relID: 7}
			if tc.plugin == decode.PGOutput {
				tb.preamble = [][]byte{typeMessage(16384, "", "int4"), relationMessage(7, tbl, "d", cols)}
			}
			rows := newRows(tb, 1, 0)
			if err := rows.add(row); err != nil {
				t.Fatal(err)
			}
			ev := events(t, rows)[0]
			if ev.Kind != decode.KindChange || ev.Op != decode.Read || ev.Table != tbl {
				t.Errorf("event %s %s %+v", ev.Kind, ev.Op, ev.Table)
			}
			for i, w := range tc.want {
				c := ev.New[i]
				if c.Name != cols[i].name || c.Type != w.typ || string(c.Value) != w.value || c.Kind != w.kind || c.Null != w.null {
					t.Errorf("column %s = %+v, want %+v", cols[i].name, c, w)
				}
			}
			switch tc.plugin {
			case decode.Wal2JSON:
				if !ev.KeyStated || !slices.Equal(ev.PrimaryKey, []string{"id"}) {
					t.Errorf("primary key %q stated %t, want [id] stated", ev.PrimaryKey, ev.KeyStated)
				}
			case decode.PGOutput:
				if !slices.Equal(ev.IdentityKey, []string{"id"}) {
					t.Errorf("identity key %q, want [id]", ev.IdentityKey)
				}
			}
		})
	}
}
