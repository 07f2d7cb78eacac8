package wal2json

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

func TestParseChanges(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		op    decode.Op
		table decode.Table
		new   []col
		old   []col
	}{
		{"insert", `{"action":"I","xid":2445,"timestamp":"2026-11-24 16:06:09.837805+00","lsn":"0/158CDF70","schema":"public","table":"orders","columns":[{"name":"code","type":"character varying(32)","value":"A-7"},{"name":"n","type":"integer","value":3},{"name":"total","type":"numeric(12,2)","value":12.50}]}`,
			decode.Insert, decode.Table{Schema: "public", Name: "orders", Raw: "public.orders"},
			[]col{{"code", "character varying(32)", "A-7", false, decode.String}, {"n", "integer", "3", false, decode.Number}, {"total", "numeric(12,2)", "12.50", false, decode.Number}}, nil},
		{"update with identity", `{"action":"U","xid":1,"lsn":"0/1","schema":"public","table":"composite","columns":[{"name":"a","type":"integer","value":1},{"name":"b","type":"text","value":"a"}],"identity":[{"name":"a","type":"integer","value":1},{"name":"b","type":"text","value":"a"}]}`,
			decode.Update, decode.Table{Schema: "public", Name: "composite", Raw: "public.composite"},
			[]col{{"a", "integer", "1", false, decode.Number}, {"b", "text", "a", false, decode.String}},
			[]col{{"a", "integer", "1", false, decode.Number}, {"b", "text", "a", false, decode.String}}},
		{"delete", `{"action":"D","xid":1,"lsn":"0/1","schema":"Sales Dept","table":"Order","identity":[{"name":"Order Id","type":"integer","value":7}]}`,
			decode.Delete, decode.Table{Schema: "Sales Dept", Name: "Order", Raw: "Sales Dept.Order"},
			nil, []col{{"Order Id", "integer", "7", false, decode.Number}}},
		{"escapes, unicode, null, bool", `{"action":"I","xid":1,"schema":"public","table":"t","columns":[{"name":"j","type":"jsonb","value":"{\"k\": \"x\\\"y\"}\n\t\u00e9\ud83d\ude00\/"},{"name":"u","type":"text","value":"Zoë 😀"},{"name":"n","type":"text","value":null},{"name":"b","type":"boolean","value":false}]}`,
			decode.Insert, decode.Table{Schema: "public", Name: "t", Raw: "public.t"},
			[]col{{"j", "jsonb", "{\"k\": \"x\\\"y\"}\n\té😀/", false, decode.String}, {"u", "text", "Zoë 😀", false, decode.String},
				{"n", "text", "", true, decode.String}, {"b", "boolean", "false", false, decode.Bool}}, nil},
		{"truncate", `{"action":"T","xid":2451,"timestamp":"2026-11-24 16:06:09.842375+00","lsn":"0/158D0338","schema":"public","table":"t1"}`,
			decode.Truncate, decode.Table{Schema: "public", Name: "t1", Raw: "public.t1"}, nil, nil},
		{"unknown keys are skipped", `{"action":"I","xid":1,"future":{"a":[1,{"b":null}],"c":"d"},"schema":"s","table":"t","columns":[{"name":"a","type":"int","value":1,"extra":true}],"pk":[{"name":"a","type":"int"}]}`,
			decode.Insert, decode.Table{Schema: "s", Name: "t", Raw: "s.t"}, []col{{"a", "int", "1", false, decode.Number}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := New().Parse([]byte(tc.in), 7)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != decode.KindChange || ev.Op != tc.op || ev.Table != tc.table || ev.LSN != 7 {
				t.Fatalf("kind %s op %s table %+v lsn %d", ev.Kind, ev.Op, ev.Table, ev.LSN)
			}
			if tc.op == decode.Truncate && (len(ev.Truncated) != 1 || ev.Truncated[0] != tc.table) {
				t.Fatalf("truncated %+v", ev.Truncated)
			}
			if got := cols(ev.New); !reflect.DeepEqual(got, tc.new) {
				t.Errorf("new\n got  %+v\n want %+v", got, tc.new)
			}
			if got := cols(ev.Old); !reflect.DeepEqual(got, tc.old) {
				t.Errorf("old\n got  %+v\n want %+v", got, tc.old)
			}
		})
	}
}

func TestBeginCommitMessage(t *testing.T) {
	p := New()
	ev, err := p.Parse([]byte(`{"action":"B","xid":1211,"timestamp":"2026-11-24 15:17:20.043531+00","lsn":"0/6C2C238","nextlsn":"0/6C2C268"}`), 1)
	if err != nil || ev.Kind != decode.KindBegin || ev.XID != 1211 || ev.CommitLSN != 0x6C2C238 || ev.CommitTime.IsZero() {
		t.Fatalf("B: %+v %v", ev, err)
	}
	ev, err = p.Parse([]byte(`{"action":"C","xid":1211,"timestamp":"2026-11-24 15:17:20.043531+00","lsn":"0/6C2C238","nextlsn":"0/6C2C268"}`), 2)
	if err != nil || ev.Kind != decode.KindCommit || ev.XID != 1211 || ev.CommitLSN != 0x6C2C238 {
		t.Fatalf("C: %+v %v", ev, err)
	}
	ev, err = p.Parse([]byte(`{"action":"M","xid":2440,"lsn":"0/158CD5F0","transactional":true,"prefix":"pg2kinesis-case","content":"text-key"}`), 3)
	if err != nil || ev.Kind != decode.KindMessage || ev.MessagePrefix != "pg2kinesis-case" || string(ev.MessageContent) != "text-key" || !ev.MessageTransact {
		t.Fatalf("M: %+v %v", ev, err)
	}
}

func TestMalformed(t *testing.T) {
	for _, in := range []string{
		"", "{", "[]", `{"action":"X","schema":"s","table":"t"}`, `{"action":"I"}`, `{"action":"I","schema":"s","table":"t","columns":[{"name":"a"}]}`,
		`{"action":"I","schema":"s","table":"t","columns":[{"name":"a","value":nope}]}`, `{"action":"B","xid":-1}`,
		`{"action":"B","lsn":"zz"}`, `{"action":"B"} trailing`, `{"action":"I","schema":"s","table":"t","columns":[{"name":"a","value":"\x"}]}`,
		`{"action":"B","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, `{"action":"I","schema":"s\u00`,
	} {
		_, err := New().Parse([]byte(in), 0x16B3748)
		var pe *decode.ParseError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "0/16B3748") || !strings.Contains(err.Error(), "wal2json") {
			t.Errorf("Parse(%q) = %v, want a ParseError naming wal2json and the LSN", in, err)
		}
	}
}

func TestEscapedValuesOfOneMessageStayIntact(t *testing.T) {
	ev, err := New().Parse([]byte(`{"action":"I","schema":"s","table":"t","columns":[{"name":"a","type":"text","value":"x\"1"},{"name":"b","type":"text","value":"y\"2"},{"name":"c","type":"text","value":"z\"3"}]}`), 1)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{string(ev.New[0].Value), string(ev.New[1].Value), string(ev.New[2].Value)}
	if !reflect.DeepEqual(got, []string{`x"1`, `y"2`, `z"3`}) {
		t.Fatalf("values %q", got)
	}
}
