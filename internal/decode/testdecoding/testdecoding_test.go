package testdecoding

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

type col struct {
	name, typ, value string
	null             bool
	kind             decode.ValueKind
}

func cols(cs []decode.Column) []col {
	var out []col
	for _, c := range cs {
		out = append(out, col{c.Name, c.Type, string(c.Value), c.Null, c.Kind})
	}
	return out
}

func s(name, typ, v string) col { return col{name, typ, v, false, decode.String} }
func n(name, typ, v string) col { return col{name, typ, v, false, decode.Number} }

func TestParse(t *testing.T) {
	items := decode.Table{Schema: "public", Name: "items", Raw: "public.items"}
	for _, tc := range []struct {
		name  string
		in    string
		kind  decode.Kind
		op    decode.Op
		table decode.Table
		new   []col
		old   []col
		toast []string
	}{
		{name: "insert", in: "table public.items: INSERT: id[integer]:1 name[text]:'one'",
			kind: decode.KindChange, op: decode.Insert, table: items,
			new: []col{n("id", "integer", "1"), s("name", "text", "one")}},
		{name: "text with spaces, commas, quotes and look-alike columns",
			in:   `table public.items: INSERT: k[text]:'hello world, it''s x[integer]:1 ''' v[integer]:2`,
			kind: decode.KindChange, op: decode.Insert, table: items,
			new: []col{s("k", "text", `hello world, it's x[integer]:1 '`), n("v", "integer", "2")}},
		{name: "newline and unicode", in: "table public.items: INSERT: k[text]:'line1\nline2 Zoë 😀'",
			kind: decode.KindChange, op: decode.Insert, table: items, new: []col{s("k", "text", "line1\nline2 Zoë 😀")}},
		{name: "types with spaces and arrays, null, bool, NaN, bits",
			in:   `table public.t: INSERT: a[character varying]:'x' b[timestamp with time zone]:'2025-06-30 12:00:00+00' c[integer[]]:'{1,2}' d[text]:null e[boolean]:false f[double precision]:NaN g[bit varying]:B'0101' h[numeric]:-1.5e+20`,
			kind: decode.KindChange, op: decode.Insert, table: decode.Table{Schema: "public", Name: "t", Raw: "public.t"},
			new: []col{s("a", "character varying", "x"), s("b", "timestamp with time zone", "2025-06-30 12:00:00+00"),
				s("c", "integer[]", "{1,2}"), {"d", "text", "", true, decode.String}, {"e", "boolean", "false", false, decode.Bool},
				n("f", "double precision", "NaN"), s("g", "bit varying", "0101"), n("h", "numeric", "-1.5e+20")}},
		{name: "quoted identifiers", in: `table "Sales Dept"."Weird ""name""": INSERT: "Order Id"[integer]:7 "a""b"["char"]:'c'`,
			kind: decode.KindChange, op: decode.Insert,
			table: decode.Table{Schema: "Sales Dept", Name: `Weird "name"`, Raw: `"Sales Dept"."Weird ""name"""`},
			new:   []col{n("Order Id", "integer", "7"), s(`a"b`, `"char"`, "c")}},
		{name: "update", in: "table public.items: UPDATE: id[integer]:1 name[text]:'z'",
			kind: decode.KindChange, op: decode.Update, table: items, new: []col{n("id", "integer", "1"), s("name", "text", "z")}},
		{name: "key-changing update", in: "table public.items: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 name[text]:'new-tuple: x'",
			kind: decode.KindChange, op: decode.Update, table: items,
			old: []col{n("id", "integer", "1")}, new: []col{n("id", "integer", "2"), s("name", "text", "new-tuple: x")}},
		{name: "unchanged toast", in: "table public.docs: UPDATE: id[integer]:1 body[text]:unchanged-toast-datum n[integer]:2",
			kind: decode.KindChange, op: decode.Update, table: decode.Table{Schema: "public", Name: "docs", Raw: "public.docs"},
			new: []col{n("id", "integer", "1"), n("n", "integer", "2")}, toast: []string{"body"}},
		{name: "delete", in: "table public.items: DELETE: id[integer]:2",
			kind: decode.KindChange, op: decode.Delete, table: items, old: []col{n("id", "integer", "2")}},
		{name: "delete without identity", in: "table public.items: DELETE: (no-tuple-data)",
			kind: decode.KindChange, op: decode.Delete, table: items},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := New()
			ev, err := p.Parse([]byte(tc.in), 42)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != tc.kind || ev.Op != tc.op || ev.Table != tc.table || ev.LSN != 42 {
				t.Fatalf("got kind %s op %s table %+v lsn %d", ev.Kind, ev.Op, ev.Table, ev.LSN)
			}
			if got := cols(ev.New); !reflect.DeepEqual(got, tc.new) {
				t.Errorf("new\n got  %+v\n want %+v", got, tc.new)
			}
			if got := cols(ev.Old); !reflect.DeepEqual(got, tc.old) {
				t.Errorf("old\n got  %+v\n want %+v", got, tc.old)
			}
			if len(ev.UnchangedToast) > 0 || len(tc.toast) > 0 {
				if !reflect.DeepEqual(ev.UnchangedToast, tc.toast) {
					t.Errorf("unchanged toast %v, want %v", ev.UnchangedToast, tc.toast)
				}
			}
		})
	}
}

func TestTransactionAndMessages(t *testing.T) {
	p := New()
	ev, err := p.Parse([]byte("BEGIN 1234"), 1)
	if err != nil || ev.Kind != decode.KindBegin || ev.XID != 1234 {
		t.Fatalf("BEGIN: %+v %v", ev, err)
	}
	ev, _ = p.Parse([]byte("table public.a: INSERT: id[integer]:1"), 2)
	if ev.XID != 1234 {
		t.Fatalf("change xid %d, want the BEGIN's 1234", ev.XID)
	}
	ev, err = p.Parse([]byte("message: transactional: 1 prefix: pg2kinesis, sz: 10 content:a, sz: b\nc"), 3)
	if err != nil || ev.Kind != decode.KindMessage || ev.MessagePrefix != "pg2kinesis" || string(ev.MessageContent) != "a, sz: b\nc" || !ev.MessageTransact {
		t.Fatalf("message: %+v %v", ev, err)
	}
	ev, err = p.Parse([]byte("table public.a, public.\"B\": TRUNCATE: restart_seqs cascade"), 4)
	if err != nil || ev.Op != decode.Truncate || len(ev.Truncated) != 2 || ev.Truncated[1].Name != "B" || !ev.RestartSeqs || !ev.Cascade {
		t.Fatalf("truncate: %+v %v", ev, err)
	}
	ev, err = p.Parse([]byte("table public.a: TRUNCATE: (no-flags)"), 5)
	if err != nil || len(ev.Truncated) != 1 || ev.RestartSeqs || ev.Cascade {
		t.Fatalf("truncate no flags: %+v %v", ev, err)
	}
	ev, err = p.Parse([]byte("COMMIT 1234 (at 2026-11-24 15:17:20.043531+00)"), 6)
	if err != nil || ev.Kind != decode.KindCommit || ev.XID != 1234 || ev.CommitTime.IsZero() {
		t.Fatalf("COMMIT: %+v %v", ev, err)
	}
}

func TestMalformed(t *testing.T) {
	for _, in := range []string{
		"", "BEGINX", "BEGIN abc", "COMMIT 1 junk", "UPSERT", "table public.a: UPSERT: id[integer]:1",
		"table public.a INSERT: id[integer]:1", "table public.a: INSERT: id[integer]", "table public.a: INSERT: id[integer:1",
		"table public.a: INSERT: k[text]:'unterminated", `table "public.a: INSERT: id[integer]:1`, "table public.a: INSERT: k[text]:'a'b",
		"table public.a: TRUNCATE: sometimes", "message: transactional: 2 prefix: p, sz: 1 content:x",
		"message: transactional: 1 prefix: p, sz: 5 content:x", "table public.a: INSERT: id[integer]:",
	} {
		_, err := New().Parse([]byte(in), 0x16B3748)
		var pe *decode.ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) = %v, want a ParseError", in, err)
			continue
		}
		if !strings.Contains(err.Error(), "0/16B3748") || !strings.Contains(err.Error(), "test_decoding") {
			t.Errorf("error %q does not name the plugin and the LSN", err)
		}
	}
}

// Values from an earlier message must not change when a later one is parsed
// into the reused buffers: the pipeline formats before the next Parse, but
// the values of one message must all stay intact together.
func TestValuesOfOneMessageStayIntact(t *testing.T) {
	p := New()
	ev, err := p.Parse([]byte(`table public.a: INSERT: a[text]:'x''1' b[text]:'y''2' c[text]:'z''3'`), 1)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{string(ev.New[0].Value), string(ev.New[1].Value), string(ev.New[2].Value)}
	if !reflect.DeepEqual(got, []string{"x'1", "y'2", "z'3"}) {
		t.Fatalf("values %q", got)
	}
}
