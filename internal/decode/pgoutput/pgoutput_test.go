package pgoutput

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

func TestTypeName(t *testing.T) {
	types := map[uint32]described{90000: describe("public", "mood"), 90001: describe("Sales Dept", "_Status")}
	for _, tc := range []struct {
		oid    uint32
		typmod int32
		want   string
	}{
		{23, -1, "integer"},
		{1043, 36, "character varying(32)"},
		{1042, 7, "character(3)"},
		{1700, 12<<16 | 2 + 4, "numeric(12,2)"},
		{1700, -1, "numeric"},
		{1184, 3, "timestamp(3) with time zone"},
		{1083, 0, "time(0) without time zone"},
		{1562, 8, "bit varying(8)"},
		{1007, -1, "integer[]"},
		{90000, -1, "mood"},
		{90001, -1, "Sales Dept.Status[]"},
		{123456, -1, "oid 123456"},
	} {
		if got := typeName(tc.oid, tc.typmod, types); got != tc.want {
			t.Errorf("typeName(%d, %d) = %q, want %q", tc.oid, tc.typmod, got, tc.want)
		}
	}
	if d := describe("", "int4"); d.base != 23 || d.name != "integer" {
		t.Errorf("a domain over int4 is described as %+v, want the integer base type", d)
	}
}

func TestValueKind(t *testing.T) {
	for _, tc := range []struct {
		oid  uint32
		text string
		want decode.ValueKind
	}{
		{23, "42", decode.Number}, {1700, "1.50", decode.Number}, {701, "1e+300", decode.Number},
		{701, "NaN", decode.String}, {700, "-Infinity", decode.String}, {1700, "Infinity", decode.String},
		{16, "t", decode.Bool}, {3802, `{"a":1}`, decode.String}, {1007, "{1,2}", decode.String}, {25, "7", decode.String},
	} {
		if got := valueKind(tc.oid, []byte(tc.text)); got != tc.want {
			t.Errorf("valueKind(%d, %q) = %v, want %v", tc.oid, tc.text, got, tc.want)
		}
	}
}

// relationMsg builds a Relation message for public.t with the given
// columns, each "name:oid:flags".
func relationMsg(id uint32, identity byte, cols ...[3]any) []byte {
	b := []byte{'R'}
	b = binary.BigEndian.AppendUint32(b, id)
	b = append(append(b, "public"...), 0)
	b = append(append(b, "t"...), 0)
	b = append(b, identity)
	b = binary.BigEndian.AppendUint16(b, uint16(len(cols)))
	for _, c := range cols {
		b = append(b, c[2].(byte))
		b = append(append(b, c[0].(string)...), 0)
		b = binary.BigEndian.AppendUint32(b, c[1].(uint32))
		b = binary.BigEndian.AppendUint32(b, 0xFFFFFFFF)
	}
	return b
}

// insertMsg builds an Insert into relation id of text values ("" is
// null, "\x00u" an unchanged TOAST value, "\x00b…" binary).
func insertMsg(id uint32, vals ...string) []byte {
	b := []byte{'I'}
	b = binary.BigEndian.AppendUint32(b, id)
	b = append(b, 'N')
	b = binary.BigEndian.AppendUint16(b, uint16(len(vals)))
	for _, v := range vals {
		switch {
		case v == "":
			b = append(b, 'n')
		case v == "\x00u":
			b = append(b, 'u')
		case strings.HasPrefix(v, "\x00b"):
			b = append(b, 'b')
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)-2))
			b = append(b, v[2:]...)
		default:
			b = append(b, 't')
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		}
	}
	return b
}

func TestParseColumns(t *testing.T) {
	p := New()
	if _, err := p.Parse(relationMsg(7, 'f', [3]any{"id", uint32(23), byte(1)}, [3]any{"ok", uint32(16), byte(1)},
		[3]any{"raw", uint32(17), byte(1)}, [3]any{"big", uint32(25), byte(1)}), 1); err != nil {
		t.Fatal(err)
	}
	ev, err := p.Parse(insertMsg(7, "1", "f", "\x00b\xde\xad", "\x00u"), 2)
	if err != nil {
		t.Fatal(err)
	}
	want := `0/2 change xid=0 insert "public"."t" (public.t)
  new "id" [integer] number "1"
  new "ok" [boolean] bool "false"
  new "raw" [bytea] string "\\xdead"
  unchanged-toast "big"`
	if got := dump(ev); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if ev.IdentityKey != nil {
		t.Errorf("REPLICA IDENTITY FULL gave identity key %q: under FULL the flags do not name the key", ev.IdentityKey)
	}
}

func TestParseErrors(t *testing.T) {
	rel := relationMsg(7, 'd', [3]any{"id", uint32(23), byte(1)})
	for _, tc := range []struct {
		name string
		msgs [][]byte
		want string
	}{
		{"empty", [][]byte{{}}, "empty message"},
		{"unknown type", [][]byte{{'Z', 1}}, "decode"},
		{"relation not described", [][]byte{insertMsg(8, "1")}, "relation id 8 was not described"},
		{"too many columns", [][]byte{rel, insertMsg(7, "1", "2")}, "2 columns, but the Relation message of public.t has 1"},
		{"length past the end", [][]byte{rel, insertMsg(7, "1")[:12]}, "past the end"},
		{"streamed message too short", [][]byte{{'S', 0, 0, 0, 9, 1}, {'I', 0}}, "too short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := New()
			var err error
			for i, m := range tc.msgs {
				if _, err = p.Parse(m, 16); err != nil && i < len(tc.msgs)-1 {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "pgoutput message at LSN 0/10") {
				t.Fatalf("error %v, want one naming pgoutput, the LSN and %q", err, tc.want)
			}
		})
	}
}

// TestReset checks that a new session starts without the old relations,
// as the server describes them again.
func TestReset(t *testing.T) {
	p := New()
	if _, err := p.Parse(relationMsg(7, 'd', [3]any{"id", uint32(23), byte(1)}), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse(insertMsg(7, "1"), 2); err != nil {
		t.Fatal(err)
	}
	p.Reset()
	if _, err := p.Parse(insertMsg(7, "1"), 3); err == nil {
		t.Fatal("a relation survived Reset")
	}
}
