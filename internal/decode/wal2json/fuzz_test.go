package wal2json

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// FuzzParse checks that no input panics, that an event obeys the model,
// and that whatever parses and is valid JSON reads as encoding/json reads it.
func FuzzParse(f *testing.F) {
	for _, m := range readCorpus(f, "testdata/pg15.txt") {
		f.Add(m.Data)
	}
	for _, tc := range cases {
		f.Add([]byte(tc.in))
	}
	p := New()
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := p.Parse(data, 0x16B3748)
		if err != nil {
			if _, ok := err.(*decode.ParseError); !ok {
				t.Fatalf("error %T, want *decode.ParseError", err)
			}
			return
		}
		checkModel(t, ev)
		if json.Valid(data) && utf8.Valid(data) {
			checkAgainstEncodingJSON(t, ev, data)
		}
	})
}

func checkModel(t *testing.T, ev *decode.Event) {
	t.Helper()
	if ev.LSN != 0x16B3748 {
		t.Fatalf("LSN %s", ev.LSN)
	}
	switch ev.Kind {
	case decode.KindBegin, decode.KindCommit, decode.KindMessage:
		if ev.Op != 0 || len(ev.New)+len(ev.Old)+len(ev.Truncated) != 0 {
			t.Fatalf("%s with a change: %s", ev.Kind, dump(ev))
		}
	case decode.KindChange:
		if ev.Op == decode.Truncate {
			if len(ev.Truncated) != 1 || ev.Table != (decode.Table{}) {
				t.Fatalf("truncate: %s", dump(ev))
			}
		} else if ev.Op < decode.Insert || ev.Op > decode.Delete || ev.Table.Raw != ev.Table.Schema+"."+ev.Table.Name {
			t.Fatalf("change: %s", dump(ev))
		}
	default:
		t.Fatalf("kind %s", ev.Kind)
	}
	for _, c := range append(ev.New[:len(ev.New):len(ev.New)], ev.Old...) {
		switch {
		case c.Null != (c.Value == nil):
			t.Fatalf("column %q: null %t, value %q", c.Name, c.Null, c.Value)
		case c.Null:
		case c.Kind == decode.Number && !json.Valid(c.Value),
			c.Kind == decode.Bool && string(c.Value) != "true" && string(c.Value) != "false":
			t.Fatalf("column %q: %v %q", c.Name, c.Kind, c.Value)
		}
	}
}

func checkAgainstEncodingJSON(t *testing.T, ev *decode.Event, data []byte) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber() // keeps a number's text; a map keeps keys' case
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	str := func(v any) string { s, _ := v.(string); return s }
	if a := str(m["action"]); a != "T" && a != "M" && a != "B" && a != "C" {
		if ev.Table.Schema != str(m["schema"]) || ev.Table.Name != str(m["table"]) {
			t.Fatalf("table %+v, encoding/json %q.%q", ev.Table, m["schema"], m["table"])
		}
	}
	if ev.Kind == decode.KindMessage && (ev.MessagePrefix != str(m["prefix"]) || string(ev.MessageContent) != str(m["content"])) {
		t.Fatalf("message %q %q, encoding/json %q %q", ev.MessagePrefix, ev.MessageContent, m["prefix"], m["content"])
	}
	sameColumns(t, ev.New, m["columns"])
	sameColumns(t, ev.Old, m["identity"])
	_, stated := m["pk"]
	if stated != ev.KeyStated {
		t.Fatalf("key stated %t, encoding/json %t", ev.KeyStated, stated)
	}
	if pk, _ := m["pk"].([]any); len(pk) != len(ev.PrimaryKey) {
		t.Fatalf("primary key %q, encoding/json %v", ev.PrimaryKey, m["pk"])
	} else {
		for i, c := range pk {
			if o, _ := c.(map[string]any); str(o["name"]) != ev.PrimaryKey[i] {
				t.Fatalf("primary key %q, encoding/json %v", ev.PrimaryKey, m["pk"])
			}
		}
	}
}

func sameColumns(t *testing.T, cols []decode.Column, v any) {
	t.Helper()
	list, _ := v.([]any)
	if len(list) != len(cols) {
		t.Fatalf("%d columns, encoding/json %d", len(cols), len(list))
	}
	for i, c := range cols {
		o, _ := list[i].(map[string]any)
		var ok bool
		switch val := o["value"].(type) {
		case nil:
			ok = c.Null
		case string:
			ok = c.Kind == decode.String && string(c.Value) == val
		case bool:
			ok = c.Kind == decode.Bool && string(c.Value) == map[bool]string{true: "true", false: "false"}[val]
		case json.Number:
			ok = c.Kind == decode.Number && string(c.Value) == string(val)
		}
		if !ok || c.Name != o["name"] || c.Type != o["type"] {
			t.Fatalf("column %d: %s, encoding/json %#v", i, dumpColumn(c), o)
		}
	}
}
