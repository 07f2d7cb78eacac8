package testdecoding

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

func str(name, typ, v string) decode.Column {
	return decode.Column{Name: name, Type: typ, Value: []byte(v), Kind: decode.String}
}
func num(name, typ, v string) decode.Column {
	return decode.Column{Name: name, Type: typ, Value: []byte(v), Kind: decode.Number}
}
func boolean(name, v string) decode.Column {
	return decode.Column{Name: name, Type: "boolean", Value: []byte(v), Kind: decode.Bool}
}
func null(name, typ string) decode.Column {
	return decode.Column{Name: name, Type: typ, Null: true}
}

var items = decode.Table{Schema: "public", Name: "items", Raw: "public.items"}

// norm makes an event comparable with a literal: empty slices become nil.
func norm(ev decode.Event) decode.Event {
	if len(ev.New) == 0 {
		ev.New = nil
	}
	if len(ev.Old) == 0 {
		ev.Old = nil
	}
	if len(ev.UnchangedToast) == 0 {
		ev.UnchangedToast = nil
	}
	if len(ev.Truncated) == 0 {
		ev.Truncated = nil
	}
	if len(ev.MessageContent) == 0 {
		ev.MessageContent = nil
	}
	return ev
}

// Lines are real PostgreSQL 15 output (see testdata/pg15.txt) unless said.
func TestParse(t *testing.T) {
	const lsn = pglogrepl.LSN(0x1A1EB298)
	change := func(op decode.Op, tbl decode.Table) decode.Event {
		return decode.Event{Kind: decode.KindChange, LSN: lsn, XID: 2685, Op: op, Table: tbl}
	}
	tests := []struct {
		name string
		line string
		want func(ev decode.Event) decode.Event // fills in what change() leaves out
		base decode.Event
	}{
		{name: "begin", line: "BEGIN 2685", base: decode.Event{Kind: decode.KindBegin, LSN: lsn, XID: 2685}},
		{name: "commit", line: "COMMIT 2685", base: decode.Event{Kind: decode.KindCommit, LSN: lsn, XID: 2685}},
		{name: "insert", line: "table public.items: INSERT: id[integer]:1 name[text]:'one'",
			base: change(decode.Insert, items), want: func(ev decode.Event) decode.Event {
				ev.New = []decode.Column{num("id", "integer", "1"), str("name", "text", "one")}
				return ev
			}},
		{name: "null, and empty text is not null", line: "table public.items: INSERT: id[integer]:null name[text]:''",
			base: change(decode.Insert, items), want: func(ev decode.Event) decode.Event {
				ev.New = []decode.Column{null("id", "integer"), str("name", "text", "")}
				return ev
			}},
		{name: "the text null is a string", line: "table public.items: INSERT: id[integer]:8 name[text]:'null'",
			base: change(decode.Insert, items), want: func(ev decode.Event) decode.Event {
				ev.New = []decode.Column{num("id", "integer", "8"), str("name", "text", "null")}
				return ev
			}},
		{name: "quote in value", line: "table public.items: INSERT: id[integer]:3 name[text]:'it''s'",
			base: change(decode.Insert, items), want: func(ev decode.Event) decode.Event {
				ev.New = []decode.Column{num("id", "integer", "3"), str("name", "text", "it's")}
				return ev
			}},
		{name: "value that looks like a column", line: "table public.items: INSERT: id[integer]:6 name[text]:'x'' name[text]:''y'",
			base: change(decode.Insert, items), want: func(ev decode.Event) decode.Event {
				ev.New = []decode.Column{num("id", "integer", "6"), str("name", "text", "x' name[text]:'y")}
				return ev
			}},
		{name: "value ending in a quote, then look-alike text (synthetic)", line: `table public.items: INSERT: k[text]:'hello world, it''s x[integer]:1 ''' v[integer]:2`,
			base: change(decode.Insert, items), want: func(ev decode.Event) decode.Event {
				ev.New = []decode.Column{str("k", "text", `hello world, it's x[integer]:1 '`), num("v", "integer", "2")}
				return ev
			}},
		{name: "value holding new-tuple: (synthetic)", line: "table public.items: UPDATE: old-key: id[integer]:1 name[text]:' new-tuple: x' new-tuple: id[integer]:2 name[text]:'new-tuple: x'",
			base: change(decode.Update, items), want: func(ev decode.Event) decode.Event {
				ev.Old = []decode.Column{num("id", "integer", "1"), str("name", "text", " new-tuple: x")}
				ev.New = []decode.Column{num("id", "integer", "2"), str("name", "text", "new-tuple: x")}
				return ev
			}},
		{name: "non-ASCII and newline", line: "table public.items: INSERT: id[integer]:4 name[text]:'héllo ✓ 日本\nline2'",
			base: change(decode.Insert, items), want: func(ev decode.Event) decode.Event {
				ev.New = []decode.Column{num("id", "integer", "4"), str("name", "text", "héllo ✓ 日本\nline2")}
				return ev
			}},
		{name: "text key with spaces and commas, key change", line: "table public.kv: UPDATE: old-key: k[text]:'key with spaces, and commas' new-tuple: k[text]:'new key, again' v[text]:'v'",
			base: change(decode.Update, decode.Table{Schema: "public", Name: "kv", Raw: "public.kv"}), want: func(ev decode.Event) decode.Event {
				ev.Old = []decode.Column{str("k", "text", "key with spaces, and commas")}
				ev.New = []decode.Column{str("k", "text", "new key, again"), str("v", "text", "v")}
				return ev
			}},
		{name: "update without key change", line: "table public.items: UPDATE: id[integer]:1 name[text]:'uno'",
			base: change(decode.Update, items), want: func(ev decode.Event) decode.Event {
				ev.New = []decode.Column{num("id", "integer", "1"), str("name", "text", "uno")}
				return ev
			}},
		{name: "composite key with uuid and numeric", line: "table public.comp: DELETE: a[integer]:1 b[text]:'b two' c[uuid]:'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
			base: change(decode.Delete, decode.Table{Schema: "public", Name: "comp", Raw: "public.comp"}), want: func(ev decode.Event) decode.Event {
				ev.Old = []decode.Column{num("a", "integer", "1"), str("b", "text", "b two"), str("c", "uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")}
				return ev
			}},
		{name: "replica identity full, nulls left out of the old row", line: "table public.full_t: UPDATE: old-key: id[integer]:2 b[integer]:2 new-tuple: id[integer]:2 a[text]:null b[integer]:3",
			base: change(decode.Update, decode.Table{Schema: "public", Name: "full_t", Raw: "public.full_t"}), want: func(ev decode.Event) decode.Event {
				ev.Old = []decode.Column{num("id", "integer", "2"), num("b", "integer", "2")}
				ev.New = []decode.Column{num("id", "integer", "2"), null("a", "text"), num("b", "integer", "3")}
				return ev
			}},
		{name: "delete without replica identity", line: "table public.nopk: DELETE: (no-tuple-data)",
			base: change(decode.Delete, decode.Table{Schema: "public", Name: "nopk", Raw: "public.nopk"})},
		{name: "update without tuple (synthetic)", line: "table public.items: UPDATE: (no-tuple-data)",
			base: change(decode.Update, items)},
		{name: "unchanged toast", line: "table public.toasty: UPDATE: id[integer]:1 big[text]:unchanged-toast-datum other[integer]:2",
			base: change(decode.Update, decode.Table{Schema: "public", Name: "toasty", Raw: "public.toasty"}), want: func(ev decode.Event) decode.Event {
				ev.New = []decode.Column{num("id", "integer", "1"), num("other", "integer", "2")}
				ev.UnchangedToast = []string{"big"}
				return ev
			}},
		{name: "quoted identifiers", line: `table public."Weird ""name""": UPDATE: old-key: "Order Id"[integer]:1 new-tuple: "Order Id"[integer]:2 "select"[text]:'sel' "Ünï"[text]:'ünï'`,
			base: change(decode.Update, decode.Table{Schema: "public", Name: `Weird "name"`, Raw: `public."Weird ""name"""`}), want: func(ev decode.Event) decode.Event {
				ev.Old = []decode.Column{num("Order Id", "integer", "1")}
				ev.New = []decode.Column{num("Order Id", "integer", "2"), str("select", "text", "sel"), str("Ünï", "text", "ünï")}
				return ev
			}},
		{name: "quoted schema, dot in table name, empty row", line: `table "My Schema"."T.x": INSERT:`,
			base: change(decode.Insert, decode.Table{Schema: "My Schema", Name: "T.x", Raw: `"My Schema"."T.x"`})},
		{name: "types with spaces, brackets, quotes and ]:", line: `table public.typ: INSERT: id[integer]:1 a["My Schema"."t y"]:'a b' b["we]:ird"]:'v' c["My Schema"."t y"[]]:'{"a b",c''d}' "a]:b[c"[text]:'col' "new-tuple"[text]:'nt' "x""y"[integer]:3`,
			base: change(decode.Insert, decode.Table{Schema: "public", Name: "typ", Raw: "public.typ"}), want: func(ev decode.Event) decode.Event {
				ev.New = []decode.Column{num("id", "integer", "1"), str("a", `"My Schema"."t y"`, "a b"), str("b", `"we]:ird"`, "v"),
					str("c", `"My Schema"."t y"[]`, `{"a b",c'd}`), str("a]:b[c", "text", "col"), str("new-tuple", "text", "nt"), num(`x"y`, "integer", "3")}
				return ev
			}},
		{name: "quote_all_identifiers", line: `table "public"."typ": INSERT: "id"[integer]:2 "t"["text"]:'q'`,
			base: change(decode.Insert, decode.Table{Schema: "public", Name: "typ", Raw: `"public"."typ"`}), want: func(ev decode.Event) decode.Event {
				ev.New = []decode.Column{num("id", "integer", "2"), str("t", `"text"`, "q")}
				return ev
			}},
		{name: "numbers, booleans, bits, arrays", line: `table public.alltypes: INSERT: s[smallint]:-1 r[real]:1.5e-10 d[double precision]:-Infinity n[numeric]:NaN h[numeric]:-1.5e+20 bo[boolean]:false bits[bit]:B'0101' vb[bit varying]:B'' ia[integer[]]:'{1,2,3}' qc["char"]:'z' tstz[timestamp with time zone]:'2026-01-02 01:04:05+00' dom[posint]:'7'`,
			base: change(decode.Insert, decode.Table{Schema: "public", Name: "alltypes", Raw: "public.alltypes"}), want: func(ev decode.Event) decode.Event {
				ev.New = []decode.Column{num("s", "smallint", "-1"), num("r", "real", "1.5e-10"), num("d", "double precision", "-Infinity"),
					num("n", "numeric", "NaN"), num("h", "numeric", "-1.5e+20"), boolean("bo", "false"), str("bits", "bit", "0101"), str("vb", "bit varying", ""),
					str("ia", "integer[]", "{1,2,3}"), str("qc", `"char"`, "z"), str("tstz", "timestamp with time zone", "2026-01-02 01:04:05+00"),
					str("dom", "posint", "7")}
				return ev
			}},
		{name: "truncate one table", line: "table public.items: TRUNCATE: (no-flags)",
			base: change(decode.Truncate, decode.Table{}), want: func(ev decode.Event) decode.Event {
				ev.Truncated = []decode.Table{items}
				return ev
			}},
		{name: "truncate several tables", line: `table public.items, public.kv, "My Schema"."T.x": TRUNCATE: restart_seqs cascade`,
			base: change(decode.Truncate, decode.Table{}), want: func(ev decode.Event) decode.Event {
				ev.Truncated = []decode.Table{items, {Schema: "public", Name: "kv", Raw: "public.kv"}, {Schema: "My Schema", Name: "T.x", Raw: `"My Schema"."T.x"`}}
				ev.RestartSeqs, ev.Cascade = true, true
				return ev
			}},
		{name: "truncate cascade", line: "table public.parent_t, public.child_t: TRUNCATE: cascade",
			base: change(decode.Truncate, decode.Table{}), want: func(ev decode.Event) decode.Event {
				ev.Truncated = []decode.Table{{Schema: "public", Name: "parent_t", Raw: "public.parent_t"}, {Schema: "public", Name: "child_t", Raw: "public.child_t"}}
				ev.Cascade = true
				return ev
			}},
		{name: "transactional message", line: "message: transactional: 1 prefix: foo, sz: 5 content:hello",
			base: decode.Event{Kind: decode.KindMessage, LSN: lsn, XID: 2685, MessageTransact: true, MessagePrefix: "foo", MessageContent: []byte("hello")}},
		{name: "non-transactional message has no xid; its content holds a fake sz", line: "message: transactional: 0 prefix: nontx, sz: 29 content:multi\nline, sz: 3 content:abc",
			base: decode.Event{Kind: decode.KindMessage, LSN: lsn, MessagePrefix: "nontx", MessageContent: []byte("multi\nline, sz: 3 content:abc")}},
		{name: "message whose prefix holds a fake sz", line: "message: transactional: 1 prefix: pre, sz: 1 content:x, sz: 1 content:y",
			base: decode.Event{Kind: decode.KindMessage, LSN: lsn, XID: 2685, MessageTransact: true, MessagePrefix: "pre, sz: 1 content:x", MessageContent: []byte("y")}},
		{name: "message content with comma, sz and newline (synthetic)", line: "message: transactional: 1 prefix: pg2kinesis, sz: 10 content:a, sz: b\nc",
			base: decode.Event{Kind: decode.KindMessage, LSN: lsn, XID: 2685, MessageTransact: true, MessagePrefix: "pg2kinesis", MessageContent: []byte("a, sz: b\nc")}},
		{name: "empty message", line: "message: transactional: 1 prefix: , sz: 0 content:",
			base: decode.Event{Kind: decode.KindMessage, LSN: lsn, XID: 2685, MessageTransact: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New()
			if _, err := p.Parse([]byte("BEGIN 2685"), 1); err != nil {
				t.Fatal(err)
			}
			ev, err := p.Parse([]byte(tc.line), lsn)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := tc.base
			if tc.want != nil {
				want = tc.want(want)
			}
			if got := norm(*ev); !reflect.DeepEqual(got, norm(want)) {
				t.Errorf("Parse(%q)\n got: %s\nwant: %s", tc.line, dump(&got), dump(&want))
			}
		})
	}
}

func TestXIDFollowsTransactions(t *testing.T) {
	p := New()
	steps := []struct {
		line string
		xid  uint32
	}{
		{"BEGIN 7", 7},
		{"table public.items: INSERT: id[integer]:1", 7},
		{"message: transactional: 1 prefix: p, sz: 0 content:", 7},
		{"COMMIT 7", 7},
		{"message: transactional: 0 prefix: p, sz: 0 content:", 0},
		{"table public.items: DELETE: id[integer]:1", 0}, // outside a transaction: never printed, but not stale
		{"BEGIN", 0},   // include-xids=0
		{"COMMIT", 0},  // include-xids=0
		{"BEGIN 8", 8}, //
		{"hello", 0},   // an error does not end the transaction
		{"COMMIT", 8},  // the xid comes from BEGIN
		{"COMMIT 9 (at 2026-11-24 16:11:32+00)", 9},
	}
	for _, st := range steps {
		ev, err := p.Parse([]byte(st.line), 1)
		if st.line == "hello" {
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", st.line)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Parse(%q): %v", st.line, err)
		}
		if ev.XID != st.xid {
			t.Errorf("Parse(%q).XID = %d, want %d", st.line, ev.XID, st.xid)
		}
	}
}

func TestCommitTime(t *testing.T) {
	want := time.Date(2026, 11, 24, 16, 11, 32, 29864000, time.UTC)
	for _, line := range []string{
		"COMMIT 2727 (at 2026-11-24 16:11:32.029864+00)",
		"COMMIT (at 2026-11-24 16:11:32.029864+00)",            // include-xids=0
		"COMMIT 2727 (at 2026-11-24 21:41:32.029864+05:30)",    // TimeZone=Asia/Kolkata
		"COMMIT 2727 (at 2026-11-24 17:11:32.029864+01)",       // TimeZone=Europe/Amsterdam
		"COMMIT 2727 (at 2026-11-24 16:31:32.029864+00:20:00)", // an LMT-style offset (synthetic)
	} {
		ev, err := New().Parse([]byte(line), 1)
		if err != nil {
			t.Fatalf("Parse(%q): %v", line, err)
		}
		if !ev.CommitTime.Equal(want) || ev.Kind != decode.KindCommit {
			t.Errorf("Parse(%q) = %s at %s, want a commit at %s", line, ev.Kind, ev.CommitTime, want)
		}
	}
	ev, err := New().Parse([]byte("COMMIT 1 (at 2026-11-24 16:11:32+00)"), 1)
	if err != nil || !ev.CommitTime.Equal(want.Truncate(time.Second)) {
		t.Errorf("whole seconds: %v, %v", ev, err)
	}
}

func TestMalformed(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"", "unknown message"},
		{"hello", "unknown message"},
		{"UPSERT", "unknown message"},
		{"BEGINX 1", "unknown message"},
		{"BEGIN x", "xid"},
		{"BEGIN 4294967296", "32-bit xid"},
		{"BEGIN 12 x", "end of the line"},
		{"COMMIT 12x", "after the xid"},
		{"COMMIT 12 ", "after the xid"},
		{"COMMIT ", "after the xid"},
		{"COMMIT (at x", "after the xid"},
		{"COMMIT 12 x", "after the xid"},
		{"COMMIT 12(at 2026-11-24 16:11:32+00)", "after the xid"},
		{"COMMITTED", "unknown message"},
		{"COMMIT 12 (at yesterday)", "commit time"},
		{"COMMIT 12 (at 2026-11-24 16:11:32+00", "(at TIMESTAMP)"},
		{"COMMIT PREPARED 'gid', txid 5", "two-phase"},
		{"PREPARE TRANSACTION 'gid', txid 5", "two-phase"},
		{"opening a streamed block for transaction TXN 5", "streaming"},
		{"table ", "schema name"},
		{"table public.items", "want : after the table name"},
		{"table public.a INSERT: id[integer]:1", "want : after the table name"},
		{"table public.a: INSERT: id[integer]", "]:"},
		{`table public.a: INSERT: ""[integer]:1`, "empty quoted column name"},
		{`table "".a: INSERT: id[integer]:1`, "empty quoted schema name"},
		{"table public: INSERT:", "want . after the schema name"},
		{"table public.: INSERT:", "table name"},
		{`table "public.items: INSERT:`, "unterminated quoted schema name"},
		{"table public.items: UPSERT: id[integer]:1", "unknown operation"},
		{"table public.items: INSERT:id[integer]:1", "column 1: want a space"},
		{"table public.items: INSERT: id[integer]:1  name[text]:'x'", "column 2"},
		{"table public.items: INSERT: id[integer]:1 ", "column 2"},
		{"table public.items: INSERT: id[integer]:'unterminated", "unterminated quoted value"},
		{"table public.items: INSERT: id[integer]:'a'b", "after the value"},
		{"table public.items: INSERT: id[integer:1", "]:"},
		{`table public.items: INSERT: id["integer]:1`, "]:"},
		{"table public.items: INSERT: id[]:1", "empty type name"},
		{"table public.items: INSERT: [integer]:1", "column name"},
		{"table public.items: INSERT: id x[integer]:1", "want [type]"},
		{`table public.items: INSERT: "id[integer]:1`, "unterminated quoted column name"},
		{"table public.items: INSERT: id[integer]:", "want a quoted value"},
		{"table public.items: INSERT: id[integer]:12abc", "want a quoted value"},
		{"table public.items: INSERT: id[integer]:nul", "want a quoted value"},
		{"table public.items: INSERT: b[bit]:B'012'", "bit string"},
		{"table public.items: INSERT: b[bit]:B", "bit string"},
		{"table public.items: INSERT: b[bit]:B'01", "bit string"},
		{"table public.items: UPDATE: old-key: id[integer]:1", "new-tuple"},
		{"table public.items: UPDATE: old-key: (no-tuple-data) new-tuple: id[integer]:1", "column 1"},
		{"table public.items: DELETE: (no-tuple-data) x", "end of the line"},
		{"table public.a, public.b: INSERT: id[integer]:1", ": TRUNCATE:"},
		{"table public.a, : TRUNCATE: (no-flags)", "schema name"},
		{"table public.a: TRUNCATE: bogus", "(no-flags)"},
		{"table public.a: TRUNCATE: cascade restart_seqs", "end of the line"},
		{"message: transactional: 2 prefix: a, sz: 1 content:x", "transactional: 0 or 1"},
		{"message: transactional: 1 prefix: a, sz: 2 content:x", "sz"},
		{"message: transactional: 1 prefix: a, sz: 99999999999 content:x", "sz"},
		{"message: transactional: 1 prefix: a", "sz"},
		{"message: transactional: 1", "prefix"},
	} {
		const lsn = pglogrepl.LSN(0x16B374D848)
		p := New()
		ev, err := p.Parse([]byte(tc.line), lsn)
		var pe *decode.ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) = %v, %v; want a *decode.ParseError", tc.line, ev, err)
			continue
		}
		if pe.LSN != lsn || pe.Plugin != decode.TestDecoding || pe.Data != tc.line || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): %v; want it to name LSN %s, test_decoding, the line and %q", tc.line, err, lsn, tc.want)
		}
		// The parser carries on after an error.
		if _, err := p.Parse([]byte("table public.items: INSERT: id[integer]:1"), lsn); err != nil {
			t.Errorf("after Parse(%q): %v", tc.line, err)
		}
	}
}

// Unescaped values live in the parser's scratch buffer: a message with
// many of them, after a smaller one, must keep every one intact.
func TestManyEscapedValues(t *testing.T) {
	p := New()
	if _, err := p.Parse([]byte("table public.t: INSERT: a[text]:'x''y'"), 1); err != nil {
		t.Fatal(err)
	}
	var line strings.Builder
	line.WriteString("table public.t: INSERT:")
	for i := range 200 {
		fmt.Fprintf(&line, ` "c""%d"[text]:'v''%d'''`, i, i)
	}
	ev, err := p.Parse([]byte(line.String()), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.New) != 200 {
		t.Fatalf("got %d columns, want 200", len(ev.New))
	}
	for i, c := range ev.New {
		if wantName, wantValue := fmt.Sprintf(`c"%d`, i), fmt.Sprintf("v'%d'", i); c.Name != wantName || string(c.Value) != wantValue {
			t.Fatalf("column %d = %q %q, want %q %q", i, c.Name, c.Value, wantName, wantValue)
		}
	}
}

// More distinct names than the intern table holds still come out right.
func TestInternBound(t *testing.T) {
	p := New()
	for i := range maxNames * 2 {
		line := fmt.Sprintf("table s%d.t%d: INSERT: c%d[type%d]:1", i, i, i, i)
		ev, err := p.Parse([]byte(line), 1)
		if err != nil {
			t.Fatal(err)
		}
		c := ev.New[0]
		if ev.Table.Schema != fmt.Sprint("s", i) || ev.Table.Name != fmt.Sprint("t", i) || c.Name != fmt.Sprint("c", i) || c.Type != fmt.Sprint("type", i) {
			t.Fatalf("%q parsed as %s", line, dump(ev))
		}
	}
	if len(p.names) > maxNames {
		t.Errorf("%d names interned, want at most %d", len(p.names), maxNames)
	}
}
