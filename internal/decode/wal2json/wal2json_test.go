package wal2json

import (
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// Real wal2json 2.5 messages from PostgreSQL 15 (testdata/pg15.txt, where
// the whole session is), each with the event it must give, as dump prints it.
var cases = []struct {
	name, in string
	lsn      pglogrepl.LSN
	want     string
}{
	{"begin: lsn is the commit's", `{"action":"B","xid":365879,"timestamp":"2026-11-24 17:50:37.001242+00","lsn":"1/732374A0","nextlsn":"1/732374D0"}`, 0x1_732373B8,
		`1/732373B8 begin xid=365879 time=2026-11-24T17:50:37.001242Z commit-lsn=1/732374A0`},
	{"commit: at nextlsn", `{"action":"C","xid":365879,"timestamp":"2026-11-24 17:50:37.001242+00","lsn":"1/732374A0","nextlsn":"1/732374D0"}`, 0x1_732374D0,
		`1/732374D0 commit xid=365879 time=2026-11-24T17:50:37.001242Z commit-lsn=1/732374A0`},
	{"commit time in another zone", `{"action":"C","xid":365777,"timestamp":"2026-11-24 23:18:37.439464+05:30","lsn":"1/7292B5E8","nextlsn":"1/7292BB40"}`, 0x1_7292BB40,
		`1/7292BB40 commit xid=365777 time=2026-11-24T17:48:37.439464Z commit-lsn=1/7292B5E8`},
	{"insert keeps the number's text", `{"action":"I","xid":365879,"timestamp":"2026-11-24 17:50:37.001242+00","lsn":"1/732373B8","schema":"public","table":"orders","columns":[{"name":"code","type":"character varying(32)","value":"A-7"},{"name":"n","type":"integer","value":3},{"name":"total","type":"numeric(12,2)","value":12.50}]}`, 0x1_732373B8,
		`1/732373B8 change xid=365879 time=2026-11-24T17:50:37.001242Z insert "public"."orders" (public.orders)
  new "code" [character varying(32)] string "A-7"
  new "n" [integer] number "3"
  new "total" [numeric(12,2)] number "12.50"`},
	{"types, escapes, NaN", `{"action":"I","xid":365880,"timestamp":"2026-11-24 17:50:37.002262+00","lsn":"1/73237570","schema":"public","table":"kinds","columns":[{"name":"id","type":"bigint","value":1},{"name":"u","type":"uuid","value":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},{"name":"t","type":"text","value":"quote \" backslash \\ newline \n tab \t ctl \u0001 Zoë 😀 €"},{"name":"b","type":"boolean","value":true},{"name":"jb","type":"jsonb","value":"{\"k\": [1, 2], \"s\": \"x\\\"y\"}"},{"name":"raw","type":"bytea","value":"deadbeef00"},{"name":"ta","type":"text[]","value":"{\"a b\",\"c\\\"d\",NULL}"},{"name":"f8","type":"double precision","value":null},{"name":"f4","type":"real","value":1.5e-07},{"name":"i2","type":"smallint","value":-32768},{"name":"d","type":"posint","value":"5"}]}`, 0x1_73237570,
		`1/73237570 change xid=365880 time=2026-11-24T17:50:37.002262Z insert "public"."kinds" (public.kinds)
  new "id" [bigint] number "1"
  new "u" [uuid] string "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
  new "t" [text] string "quote \" backslash \\ newline \n tab \t ctl \x01 Zoë 😀 €"
  new "b" [boolean] bool "true"
  new "jb" [jsonb] string "{\"k\": [1, 2], \"s\": \"x\\\"y\"}"
  new "raw" [bytea] string "deadbeef00"
  new "ta" [text[]] string "{\"a b\",\"c\\\"d\",NULL}"
  new "f8" [double precision] string null
  new "f4" [real] number "1.5e-07"
  new "i2" [smallint] number "-32768"
  new "d" [posint] string "5"`},
	{"update, composite key unchanged", `{"action":"U","xid":365882,"timestamp":"2026-11-24 17:50:37.002784+00","lsn":"1/73237AB0","schema":"public","table":"composite","columns":[{"name":"a","type":"integer","value":1},{"name":"b","type":"text","value":"a"},{"name":"v","type":"text","value":"v2"}],"identity":[{"name":"a","type":"integer","value":1},{"name":"b","type":"text","value":"a"}]}`, 0x1_73237AB0,
		`1/73237AB0 change xid=365882 time=2026-11-24T17:50:37.002784Z update "public"."composite" (public.composite)
  old "a" [integer] number "1"
  old "b" [text] string "a"
  new "a" [integer] number "1"
  new "b" [text] string "a"
  new "v" [text] string "v2"`},
	{"update changing the key", `{"action":"U","xid":365883,"timestamp":"2026-11-24 17:50:37.002948+00","lsn":"1/73237B30","schema":"public","table":"composite","columns":[{"name":"a","type":"integer","value":1},{"name":"b","type":"text","value":"b"},{"name":"v","type":"text","value":"v2"}],"identity":[{"name":"a","type":"integer","value":1},{"name":"b","type":"text","value":"a"}]}`, 0x1_73237B30,
		`1/73237B30 change xid=365883 time=2026-11-24T17:50:37.002948Z update "public"."composite" (public.composite)
  old "a" [integer] number "1"
  old "b" [text] string "a"
  new "a" [integer] number "1"
  new "b" [text] string "b"
  new "v" [text] string "v2"`},
	{"delete: identity only", `{"action":"D","xid":365884,"timestamp":"2026-11-24 17:50:37.00307+00","lsn":"1/73237BF8","schema":"public","table":"composite","identity":[{"name":"a","type":"integer","value":1},{"name":"b","type":"text","value":"b"}]}`, 0x1_73237BF8,
		`1/73237BF8 change xid=365884 time=2026-11-24T17:50:37.00307Z delete "public"."composite" (public.composite)
  old "a" [integer] number "1"
  old "b" [text] string "b"`},
	{"replica identity full", `{"action":"U","xid":365886,"timestamp":"2026-11-24 17:50:37.003461+00","lsn":"1/73237D80","schema":"public","table":"full_ident","columns":[{"name":"id","type":"integer","value":1},{"name":"name","type":"text","value":"uno"},{"name":"note","type":"text","value":null}],"identity":[{"name":"id","type":"integer","value":1},{"name":"name","type":"text","value":"one"},{"name":"note","type":"text","value":null}]}`, 0x1_73237D80,
		`1/73237D80 change xid=365886 time=2026-11-24T17:50:37.003461Z update "public"."full_ident" (public.full_ident)
  old "id" [integer] number "1"
  old "name" [text] string "one"
  old "note" [text] string null
  new "id" [integer] number "1"
  new "name" [text] string "uno"
  new "note" [text] string null`},
	{"unchanged TOAST, key identity: big is just missing", `{"action":"U","xid":365895,"timestamp":"2026-11-24 17:50:37.005659+00","lsn":"1/73239E20","schema":"public","table":"toasty","columns":[{"name":"id","type":"integer","value":1},{"name":"small","type":"text","value":"s2"}],"identity":[{"name":"id","type":"integer","value":1}]}`, 0x1_73239E20,
		`1/73239E20 change xid=365895 time=2026-11-24T17:50:37.005659Z update "public"."toasty" (public.toasty)
  old "id" [integer] number "1"
  new "id" [integer] number "1"
  new "small" [text] string "s2"`},
	// The real message with the 6400-byte value of big cut short.
	{"unchanged TOAST, full identity names it", `{"action":"U","xid":365899,"timestamp":"2026-11-24 17:50:37.006715+00","lsn":"1/7323BDF0","schema":"public","table":"toast_full","columns":[{"name":"id","type":"integer","value":1},{"name":"small","type":"text","value":"s2"}],"identity":[{"name":"id","type":"integer","value":1},{"name":"big","type":"text","value":"c4ca4238"},{"name":"small","type":"text","value":"s1"}]}`, 0x1_7323BDF0,
		`1/7323BDF0 change xid=365899 time=2026-11-24T17:50:37.006715Z update "public"."toast_full" (public.toast_full)
  old "id" [integer] number "1"
  old "big" [text] string "c4ca4238"
  old "small" [text] string "s1"
  new "id" [integer] number "1"
  new "small" [text] string "s2"
  unchanged-toast "big"`},
	{"quoted identifiers, and type names wal2json does not escape", `{"action":"I","xid":365900,"timestamp":"2026-11-24 17:50:37.007041+00","lsn":"1/7323D7A8","schema":"Sales Dept","table":"Order \"Items\"","columns":[{"name":"Order Id","type":"integer","value":7},{"name":"odd,name","type":"text","value":"n"},{"name":"Status","type":"Sales Dept"."Status","value":"open"},{"name":"w","type":"Odd ""Type""","value":"x"},{"name":"wa","type":"\"Odd \"\"Type\"\"\"[]","value":"{x}"}]}`, 0x1_7323D7A8,
		`1/7323D7A8 change xid=365900 time=2026-11-24T17:50:37.007041Z insert "Sales Dept"."Order \"Items\"" (Sales Dept.Order "Items")
  new "Order Id" [integer] number "7"
  new "odd,name" [text] string "n"
  new "Status" ["Sales Dept"."Status"] string "open"
  new "w" ["Odd ""Type"""] string "x"
  new "wa" ["Odd ""Type"""[]] string "{x}"`},
	{"non-ASCII names, escaped backslash", `{"action":"I","xid":365903,"timestamp":"2026-11-24 17:50:37.007786+00","lsn":"1/7323D9F0","schema":"public","table":"Ünïcode","columns":[{"name":"ключ","type":"integer","value":1},{"name":"Mixed Case","type":"text","value":""},{"name":"tab\tcol","type":"text","value":"\\u0041 /"}]}`, 0x1_7323D9F0,
		`1/7323D9F0 change xid=365903 time=2026-11-24T17:50:37.007786Z insert "public"."Ünïcode" (public.Ünïcode)
  new "ключ" [integer] number "1"
  new "Mixed Case" [text] string ""
  new "tab\tcol" [text] string "\\u0041 /"`},
	{"a table without columns", `{"action":"I","xid":365904,"timestamp":"2026-11-24 17:50:37.008021+00","lsn":"1/7323DB08","schema":"public","table":"nocols","columns":[]}`, 0x1_7323DB08,
		`1/7323DB08 change xid=365904 time=2026-11-24T17:50:37.008021Z insert "public"."nocols" (public.nocols)`},
	{"truncate: one message per table", `{"action":"T","xid":365906,"timestamp":"2026-11-24 17:50:37.009316+00","lsn":"1/7323E9C8","schema":"public","table":"t2"}`, 0x1_7323E9C8,
		`1/7323E9C8 change xid=365906 time=2026-11-24T17:50:37.009316Z truncate
  truncated "public"."t2" (public.t2)`},
	{"transactional message", `{"action":"M","xid":365908,"timestamp":"2026-11-24 17:50:37.010941+00","lsn":"1/7323F5F8","transactional":true,"prefix":"pg2kinesis-case","content":"text-key"}`, 0x1_7323F5F8,
		`1/7323F5F8 message xid=365908 time=2026-11-24T17:50:37.010941Z transactional=true prefix="pg2kinesis-case" content="text-key"`},
	{"non-transactional message: xid and timestamp null", `{"action":"M","xid":null,"timestamp":null,"lsn":"1/7323F680","transactional":false,"prefix":"nontx","content":"line\nwith \"quotes\" and é"}`, 0x1_7323F680,
		`1/7323F680 message xid=0 transactional=false prefix="nontx" content="line\nwith \"quotes\" and é"`},
	// Not from a server: what JSON allows and wal2json could print.
	{"surrogate pairs, lone surrogates, every escape", `{"action":"M","xid":null,"timestamp":null,"lsn":"0/1","transactional":false,"prefix":"\ud83d\ude00","content":"\ud83d \ude00 \ud83d\u0041 \"\\\/\b\f\n\r\t\u00e9\u20AC"}`, 1,
		`0/1 message xid=0 transactional=false prefix="😀" content="� � �A \"\\/\b\f\n\r\té€"`},
	{"bytes that are not UTF-8 pass through", "{\"action\":\"M\",\"xid\":null,\"timestamp\":null,\"lsn\":\"0/1\",\"transactional\":false,\"prefix\":\"bin\",\"content\":\"a\xffb\"}", 1,
		`0/1 message xid=0 transactional=false prefix="bin" content="a\xffb"`},
	{"white space, keys in any order, keys we do not know", "{ \"columns\" : [ {\"value\": -0.5e+3 , \"typeoid\": 1700, \"type\":\"numeric\", \"name\":\"n\"} ] ,\n\"table\":\"t\",\"pk\":[{\"name\":\"n\",\"type\":\"numeric\"}],\"x\":{\"y\":[true,false,null,1,\"s\",{}]},\"schema\":\"s\",\"xid\":7,\"origin\":0,\"action\":\"I\" }\n", 1,
		`0/1 change xid=7 insert "s"."t" (s.t) primary-key=["n"]
  new "n" [numeric] number "-0.5e+3"`},
	// include-pk, from PostgreSQL 15 with wal2json 2.5: the primary key as
	// of the change, [] for a table without one; under USING INDEX the
	// identity is the index's columns, not the key's.
	{"include-pk: a table without a primary key", `{"action":"I","xid":3151,"schema":"public","table":"nk","columns":[{"name":"id","type":"integer","value":1},{"name":"v","type":"text","value":"x"}],"pk":[]}`, 1,
		`0/1 change xid=3151 insert "public"."nk" (public.nk) primary-key=[]
  new "id" [integer] number "1"
  new "v" [text] string "x"`},
	{"include-pk: replica identity using index", `{"action":"D","xid":3147,"schema":"public","table":"b","identity":[{"name":"u","type":"integer","value":11}],"pk":[{"name":"id","type":"integer"},{"name":"k2","type":"text","typeoid":25}]}`, 1,
		`0/1 change xid=3147 delete "public"."b" (public.b) primary-key=["id" "k2"]
  old "u" [integer] number "11"`},
}

func TestParse(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := New().Parse([]byte(tc.in), tc.lsn)
			if err != nil {
				t.Fatal(err)
			}
			if got := dump(ev); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// One Parser over every case, twice, in turn: the slots, names and
// buffers it reuses must not carry anything from one message to the next.
func TestParseReuse(t *testing.T) {
	p := New()
	var first *decode.Event
	for range 2 {
		for _, tc := range cases {
			ev, err := p.Parse([]byte(tc.in), tc.lsn)
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = ev
			} else if ev != first {
				t.Fatal("Parse returned a new Event")
			}
			if got := dump(ev); got != tc.want {
				t.Fatalf("%s: got\n%s\nwant\n%s", tc.name, got, tc.want)
			}
			for _, c := range ev.New[len(ev.New):cap(ev.New)] {
				if c.Value != nil {
					t.Fatalf("%s: a spare column slot keeps an old value", tc.name)
				}
			}
		}
	}
}

func TestValuesAliasTheMessageUnlessEscaped(t *testing.T) {
	in := []byte(`{"action":"I","xid":1,"schema":"s","table":"t","columns":[{"name":"a","type":"text","value":"x\"1"},{"name":"b","type":"text","value":"plain"},{"name":"c","type":"text","value":"z\"3"},{"name":"d","type":"int","value":42}]}`)
	ev, err := New().Parse(in, 1)
	if err != nil {
		t.Fatal(err)
	}
	inside := func(v []byte) bool {
		start := uintptr(unsafe.Pointer(unsafe.SliceData(in)))
		at := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
		return at >= start && at < start+uintptr(len(in))
	}
	for i, want := range []struct {
		v       string
		aliases bool
	}{{`x"1`, false}, {"plain", true}, {`z"3`, false}, {"42", true}} {
		c := ev.New[i]
		if string(c.Value) != want.v || inside(c.Value) != want.aliases || cap(c.Value) != len(c.Value) {
			t.Errorf("column %s: %q, aliases the message %t, cap %d", c.Name, c.Value, inside(c.Value), cap(c.Value))
		}
	}
}

func TestMalformed(t *testing.T) {
	const col = `{"name":"a","type":"int","value":1}`
	ins := func(cols string) string {
		return `{"action":"I","xid":1,"schema":"s","table":"t","columns":[` + cols + `]}`
	}
	for _, tc := range []struct{ in, wantIn string }{
		{"", "want '{'"},
		{"{", "want a string"},
		{`{"action":"B"`, "want ',' or '}'"},
		{"[]", "want '{'"},
		{"null", "want '{'"},
		{`{}`, "missing or unknown action"},
		{`{"action":"X","xid":1,"schema":"s","table":"t"}`, `unknown action "X"`},
		{`{"action":"IU","xid":1,"schema":"s","table":"t","columns":[]}`, `unknown action "IU"`},
		{`{"action":1}`, `"action": want a string`},
		{`{"action":"B","xid":1,"timestamp":"2026-11-24 17:50:37+00"}`, "include-lsn"},
		{`{"action":"C","timestamp":"2026-11-24 17:50:37+00","lsn":"0/1"}`, "include-xids"},
		{`{"action":"B","xid":1,"timestamp":"yesterday","lsn":"0/1"}`, `"timestamp": bad timestamp`},
		{`{"action":"B","xid":1,"timestamp":"2026-11-24 17:50:37+00","lsn":"0/1/2"}`, `"lsn": bad LSN`},
		{`{"action":"B","xid":-1}`, `"xid": bad xid -1`},
		{`{"action":"B","xid":4294967296}`, `"xid": xid 4294967296 out of range`},
		{`{"action":"B","xid":1.5}`, `"xid": bad xid`},
		{`{"action":"B","xid":null,"timestamp":"2026-11-24 17:50:37+00","lsn":"0/1"}`, "action B without xid"},
		{`{"action":"C","xid":1,"timestamp":null,"lsn":"0/1"}`, "action C without xid, timestamp or lsn"},
		{`{"action":"B","xid":"1"}`, `"xid": want a value`},
		{`{"action":"I","schema":"s","table":"t","columns":[]}`, "action I without xid"},
		{`{"action":"D","xid":1,"table":"t","identity":[]}`, "action D without schema or table"},
		{`{"action":"U","xid":1,"schema":"s","table":"t","identity":[]}`, "action U with columns false and identity true"},
		{`{"action":"I","xid":1,"schema":"s","table":"t","columns":[],"identity":[]}`, "action I with columns true and identity true"},
		{`{"action":"I","xid":1,"pk":[],"pk":[]}`, `"pk": repeated`},
		{`{"action":"I","xid":1,"pk":{}}`, `"pk": want '['`},
		{`{"action":"I","xid":1,"pk":[{"type":"int"}]}`, `"pk": key column 1 without a name`},
		{`{"action":"I","xid":1,"pk":[{"name":1}]}`, `"pk": key column 1: "name": want a string`},
		{`{"action":"D","xid":1,"schema":"s","table":"t","columns":[],"identity":[]}`, "action D with columns true"},
		{`{"action":"B","xid":1,"timestamp":"2026-11-24 17:50:37+00","lsn":"0/1","columns":[]}`, "action B with columns true"},
		{`{"action":"T","xid":1,"schema":"s","table":"t","identity":[]}`, "action T with columns false and identity true"},
		{`{"action":"I","xid":1,"schema":"s","table":"t","columns":[],"columns":[]}`, `"columns": repeated`},
		{`{"action":"U","xid":1,"schema":"s","table":"t","columns":[],"identity":[],"identity":[]}`, `"identity": repeated`},
		{`{"action":"M","xid":1,"prefix":"p","content":"c"}`, "action M without transactional"},
		{`{"action":"M","xid":null,"transactional":true,"prefix":"p","content":"c"}`, "transactional action M without xid"},
		{`{"action":"M","xid":null,"transactional":"yes"}`, `"transactional": want true or false`},
		{`{"action":"B"} trailing`, "text after the message"},
		{ins(`{"name":"a","type":"int"}`), `"columns": column 1: want name, type and value`},
		{ins(col + `,{"name":"b","value":1}`), `"columns": column 2: want name, type and value`},
		{ins(col + `,{"name":"b","type":"int","value":nope}`), `column 2: "value": want a value`},
		{ins(`{"name":"a","type":"bool","value":tru}`), `"value": want a value`},
		{ins(`{"name":"a","type":"int","value":01}`), "want ',' or '}'"},
		{ins(`{"name":"a","type":"int","value":1.}`), "bad number"},
		{ins(`{"name":"a","type":"int","value":1e}`), "bad number"},
		{ins(`{"name":"a","type":"int","value":-}`), "want a value"},
		{ins(`{"name":"a","type":"int","value":"\x"}`), `invalid escape \x`},
		{`{"action":"M","prefix":"\u1"`, `"prefix": short \u escape`},
		{ins(`{"name":"a","type":"int","value":"\u12zz"}`), `bad \u escape`},
		{ins(`{"name":"a","type":"int","value":"abc`), "unterminated string"},
		{ins(`{"name":"a","type":"int","value":"abc\"`), "unterminated string"},
		{ins(`{"name":"a","type":"x""y`), "unterminated type name"},
		{ins(col + `,`), "want '{'"},
		{ins(col + ` ` + col), "want ',' or ']'"},
		{`{"action":"I","xid":1,"schema":"s","table":"t","columns":{}}`, `"columns": want '['`},
		{`{"action":"B","x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, `"x": value nested too deep`},
		{`{"action":"B","x":{"a" 1}}`, "want ':'"},
		{`{"action":"B","x":[1 2]}`, "want ',' or ']'"},
	} {
		_, err := New().Parse([]byte(tc.in), 0x16B3748)
		var pe *decode.ParseError
		if !errors.As(err, &pe) || pe.Plugin != decode.Wal2JSON || pe.LSN != 0x16B3748 || pe.Data != tc.in ||
			!strings.Contains(pe.Msg, tc.wantIn) {
			t.Errorf("Parse(%q) = %v\nwant a wal2json ParseError at 0/16B3748 saying %q", tc.in, err, tc.wantIn)
		}
	}
}
