package format

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

func jsonRecord(t *testing.T, ev *decode.Event, tbl decode.Table, key []string) string {
	t.Helper()
	f, err := New("JSON", Options{Plugin: decode.TestDecoding})
	if err != nil {
		t.Fatal(err)
	}
	out := f.Append(nil, ev, tbl, key)
	if !json.Valid(out) {
		t.Fatalf("invalid JSON: %s", out)
	}
	return string(out)
}

// The record of docs/formats.md §4, one case per rule. Each case gives the whole
// record, so key order and compactness are checked too.
func TestJSONRecords(t *testing.T) {
	orders := table("public", "orders", "public.orders")
	lsn := pglogrepl.LSN(0x16B3748)
	commit := time.Date(2026, 11, 24, 16, 7, 38, 54722000, time.UTC)
	with := func(ev *decode.Event, f func(*decode.Event)) *decode.Event { f(ev); return ev }
	const head = `{"op":"insert","schema":"public","table":"orders","xid":7,"lsn":"0/16B3748","commit_lsn":null,"commit_time":null,`
	for _, tc := range []struct {
		name string
		ev   *decode.Event
		key  []string
		want string
	}{
		{"insert: numbers, bool, null, empty and escaped strings",
			change(7, decode.Insert, orders, []decode.Column{
				col("code", "character varying(32)", "A-7", decode.String), col("n", "integer", "-3", decode.Number),
				col("total", "numeric(12,2)", "12.50", decode.Number), col("big", "bigint", "9007199254740993", decode.Number),
				col("ok", "boolean", "true", decode.Bool), col("no", "boolean", "f", decode.Bool), nullCol("nul", "text"),
				col("e", "text", "", decode.String), col("s", "text", "a\"b\\c\n\t\x01/é😀", decode.String)}, nil),
			[]string{"code"},
			head + `"pk":{"code":"A-7"},"before":null,"after":{"code":"A-7","n":-3,"total":12.50,"big":9007199254740993,"ok":true,"no":false,"nul":null,"e":"","s":"a\"b\\c\n\t\u0001/é😀"},"unchanged_toast":[]}`},
		{"NaN and Infinity are strings, not invalid JSON",
			change(7, decode.Insert, orders, []decode.Column{
				col("code", "text", "x", decode.String), col("f", "double precision", "NaN", decode.Number),
				col("g", "real", "-Infinity", decode.Number), nullCol("h", "numeric")}, nil),
			[]string{"code"},
			head + `"pk":{"code":"x"},"before":null,"after":{"code":"x","f":"NaN","g":"-Infinity","h":null},"unchanged_toast":[]}`},
		{"json and jsonb nest, compacted; arrays of them and null stay as they are",
			change(7, decode.Insert, orders, []decode.Column{
				col("code", "text", "x", decode.String),
				col("j", "jsonb", `{"k": [1, 2], "s": "x\"y z"}`, decode.String),
				col("t", "json", "{\n  \"a\" : \"b\\n c\",\n\t\"d\": [ ]\n}", decode.String),
				col("n", "json", `42`, decode.String), col("s", "jsonb", `"str"`, decode.String),
				col("arr", "jsonb[]", `{"{\"a\": 1}"}`, decode.String), nullCol("jn", "jsonb")}, nil),
			[]string{"code"},
			head + `"pk":{"code":"x"},"before":null,"after":{"code":"x","j":{"k":[1,2],"s":"x\"y z"},"t":{"a":"b\n c","d":[]},"n":42,"s":"str","arr":"{\"{\\\"a\\\": 1}\"}","jn":null},"unchanged_toast":[]}`},
		{"bytea: Postgres' hex form whatever the plugin (wal2json prints bare hex); escape form as it is",
			change(7, decode.Insert, orders, []decode.Column{
				col("code", "text", "x", decode.String), col("pg", "bytea", `\x00ff10`, decode.String),
				col("w2j", "bytea", "00FF10", decode.String), col("empty", "bytea", "", decode.String),
				col("esc", "bytea", `a\000`, decode.String), col("odd", "bytea", "abc", decode.String), nullCol("nb", "bytea")}, nil),
			[]string{"code"},
			head + `"pk":{"code":"x"},"before":null,"after":{"code":"x","pg":"\\x00ff10","w2j":"\\x00FF10","empty":"\\x","esc":"a\\000","odd":"abc","nb":null},"unchanged_toast":[]}`},
		{"update with the old key (REPLICA IDENTITY DEFAULT) and commit position",
			with(change(8, decode.Update, orders,
				[]decode.Column{col("code", "text", "B-2", decode.String), col("n", "integer", "1", decode.Number)},
				[]decode.Column{col("code", "text", "B-1", decode.String)}),
				func(ev *decode.Event) {
					ev.LSN, ev.CommitLSN = lsn, pglogrepl.LSN(0x1_0A9D9E70)
					ev.CommitTime = commit.In(time.FixedZone("", 2*3600))
				}),
			[]string{"code"},
			`{"op":"update","schema":"public","table":"orders","xid":8,"lsn":"0/16B3748","commit_lsn":"1/A9D9E70","commit_time":"2026-11-24T16:07:38.054722Z","pk":{"code":"B-2"},"before":{"code":"B-1"},"after":{"code":"B-2","n":1},"unchanged_toast":[]}`},
		{"delete: key from the old row, no after",
			change(9, decode.Delete, orders, nil, []decode.Column{col("code", "text", "A-7", decode.String)}),
			[]string{"code"},
			`{"op":"delete","schema":"public","table":"orders","xid":9,"lsn":"0/16B3748","commit_lsn":null,"commit_time":null,"pk":{"code":"A-7"},"before":{"code":"A-7"},"after":null,"unchanged_toast":[]}`},
		{"delete without the key (REPLICA IDENTITY NOTHING): pk null",
			change(9, decode.Delete, orders, nil, nil), []string{"code"},
			`{"op":"delete","schema":"public","table":"orders","xid":9,"lsn":"0/16B3748","commit_lsn":null,"commit_time":null,"pk":null,"before":null,"after":null,"unchanged_toast":[]}`},
		{"composite key in key order, not column order",
			change(7, decode.Insert, orders, []decode.Column{
				col("a", "integer", "1", decode.Number), col("b", "text", "b,c", decode.String), col("v", "text", "y", decode.String)}, nil),
			[]string{"b", "a"},
			head + `"pk":{"b":"b,c","a":1},"before":null,"after":{"a":1,"b":"b,c","v":"y"},"unchanged_toast":[]}`},
		{"table without a key (full change): pk null",
			change(7, decode.Insert, orders, []decode.Column{col("v", "text", "no key", decode.String)}, nil), nil,
			head + `"pk":null,"before":null,"after":{"v":"no key"},"unchanged_toast":[]}`},
		{"unchanged TOAST listed, and a TOASTed key taken from the old row",
			with(change(4, decode.Update, orders,
				[]decode.Column{col("n", "integer", "2", decode.Number)},
				[]decode.Column{col("code", "text", "K", decode.String), col("body", "text", "long", decode.String)}),
				func(ev *decode.Event) { ev.UnchangedToast = []string{"code", "body"} }),
			[]string{"code"},
			`{"op":"update","schema":"public","table":"orders","xid":4,"lsn":"0/16B3748","commit_lsn":null,"commit_time":null,"pk":{"code":"K"},"before":{"code":"K","body":"long"},"after":{"n":2},"unchanged_toast":["code","body"]}`},
		{"truncate: no key, no rows",
			&decode.Event{Kind: decode.KindChange, XID: 5, Op: decode.Truncate, Truncated: []decode.Table{orders}},
			[]string{"code"},
			`{"op":"truncate","schema":"public","table":"orders","xid":5,"lsn":"0/16B3748","commit_lsn":null,"commit_time":null,"pk":null,"before":null,"after":null,"unchanged_toast":[]}`},
		{"names are escaped, unquoted as the plugin names them",
			change(7, decode.Insert, table("Sales Dept", `Or"der`, `"Sales Dept"."Or""der"`),
				[]decode.Column{col("Order Id", "integer", "7", decode.Number), col("naïve\\", "text", "\xffok\u2028", decode.String)}, nil),
			[]string{"Order Id"},
			`{"op":"insert","schema":"Sales Dept","table":"Or\"der","xid":7,"lsn":"0/16B3748","commit_lsn":null,"commit_time":null,"pk":{"Order Id":7},"before":null,"after":{"Order Id":7,"naïve\\":"\ufffdok` + "\u2028" + `"},"unchanged_toast":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ev.LSN == 0 {
				tc.ev.LSN = lsn
			}
			tbl := tc.ev.Table
			if tc.ev.Op == decode.Truncate {
				tbl = tc.ev.Truncated[0]
			}
			if got := jsonRecord(t, tc.ev, tbl, tc.key); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// --full-change does not change the JSON record.
func TestJSONIgnoresFullChange(t *testing.T) {
	ev := change(1, decode.Insert, table("public", "t", "public.t"), []decode.Column{col("id", "integer", "1", decode.Number)}, nil)
	a, _ := New("JSON", Options{Plugin: decode.Wal2JSON})
	b, err := New("JSON", Options{Plugin: decode.Wal2JSON, FullChange: true})
	if err != nil {
		t.Fatal(err)
	}
	if x, y := a.Append(nil, ev, ev.Table, []string{"id"}), b.Append(nil, ev, ev.Table, []string{"id"}); !bytes.Equal(x, y) {
		t.Errorf("full change differs:\n%s\n%s", x, y)
	}
}

func TestAppendLSNMatchesPglogrepl(t *testing.T) {
	for _, lsn := range []pglogrepl.LSN{0, 1, 0x16B3748, 0x16_B374D848, 0xFFFFFFFF_FFFFFFFF, 0x1_00000000} {
		want := `"` + lsn.String() + `"`
		if got := string(appendLSN(nil, lsn)); got != want {
			t.Errorf("appendLSN(%d) = %s, want %s", uint64(lsn), got, want)
		}
	}
}

func TestAppendRawJSONFallsBackToAString(t *testing.T) {
	for in, want := range map[string]string{
		`{"a": 1}`:      `{"a":1}`,
		` [1, "] ["] `:  `[1,"] ["]`,
		`"a\"}"`:        `"a\"}"`,
		``:              `""`,
		"  \n ":         `"  \n "`,
		`{"a": 1`:       `"{\"a\": 1"`,
		`{"a": "1}`:     `"{\"a\": \"1}"`,
		`]`:             `"]"`,
		"\"a\nb\"":      `"\"a\nb\""`,
		"{\"\xff\": 1}": `"{\"\ufffd\": 1}"`,
	} {
		got := appendRawJSON([]byte("x"), []byte(in))
		if string(got) != "x"+want {
			t.Errorf("appendRawJSON(%q) = %s, want x%s", in, got, want)
		}
	}
}

// FuzzJSONString checks the escaping against encoding/json: the output is
// always valid JSON and decodes to what encoding/json's does (the same
// string for valid UTF-8, U+FFFD for each invalid byte).
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\s/", "\n\r\t\b\f\x00\x1f\x7f", "é€😀", "\xff\xfe", "a\xc3", "\u2028<>&", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendJSONString(nil, []byte(s))
		var ours, theirs string
		if err := json.Unmarshal(got, &ours); err != nil {
			t.Fatalf("appendJSONString(%q) = %s: %v", s, got, err)
		}
		ref, _ := json.Marshal(s)
		_ = json.Unmarshal(ref, &theirs)
		if ours != theirs {
			t.Fatalf("appendJSONString(%q) decodes to %q, encoding/json's to %q", s, ours, theirs)
		}
		if str := string(appendJSONStr(nil, s)); str != string(got) {
			t.Fatalf("appendJSONStr(%q) = %s, appendJSONString %s", s, str, got)
		}
		if bytes.ContainsAny(got, "\n\r") {
			t.Fatalf("appendJSONString(%q) = %s: a raw line break", s, got)
		}
		if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == '"' || r == '\\' }) && string(got) != `"`+s+`"` {
			t.Fatalf("appendJSONString(%q) = %s: valid UTF-8 not passed through as it is", s, got)
		}
	})
}

// Appending into a buffer with room allocates nothing, whatever the values:
// non-ASCII names, escapes, nested json, a commit time.
func TestJSONAppendDoesNotAllocate(t *testing.T) {
	ev := change(1, decode.Update, table("public", "naïve", `public."naïve"`), []decode.Column{
		col("id", "bigint", "1", decode.Number), col("j", "jsonb", `{"k": [1, 2]}`, decode.String),
		col("s", "text", "a\"\n\xffé", decode.String), nullCol("n", "text")},
		[]decode.Column{col("id", "bigint", "1", decode.Number)})
	ev.LSN, ev.CommitLSN, ev.CommitTime = 0x16B3748, 0x16B3800, time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("", 3600))
	ev.UnchangedToast = []string{"body"}
	f, _ := New("JSON", Options{Plugin: decode.Wal2JSON})
	key := []string{"id"}
	buf := f.Append(nil, ev, ev.Table, key)
	if n := testing.AllocsPerRun(100, func() { buf = f.Append(buf[:0], ev, ev.Table, key) }); n != 0 {
		t.Errorf("Append allocates %v times per record", n)
	}
}

// A domain's value is written as its base type's, as pgoutput (which
// names the base type) gives it: the text test_decoding and wal2json
// print, typed.
func TestJSONTypesDomainsByTheirBase(t *testing.T) {
	base := map[string]string{"posint": "integer", "flag": "boolean", "doc": "jsonb", "money": "numeric(12,2)", "label": "text"}
	f, err := New(JSON, Options{BaseType: func(name string) (string, bool) { b, ok := base[name]; return b, ok }})
	if err != nil {
		t.Fatal(err)
	}
	ev := change(7, decode.Insert, table("public", "t", "public.t"), []decode.Column{
		col("p", "posint", "5", decode.String), col("f", "flag", "t", decode.String),
		col("d", "doc", `{"k": [1]}`, decode.String), col("m", "money", "NaN", decode.String),
		col("l", "label", "5", decode.String), col("u", "unknown", "5", decode.String), nullCol("n", "posint")}, nil)
	got := string(f.Append(nil, ev, ev.Table, nil))
	want := `"after":{"p":5,"f":true,"d":{"k":[1]},"m":"NaN","l":"5","u":"5","n":null}`
	if !strings.Contains(got, want) {
		t.Errorf("record %s\nwant it to hold %s", got, want)
	}
}
