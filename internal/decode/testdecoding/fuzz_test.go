package testdecoding

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// FuzzParse feeds arbitrary messages to a long-lived parser, seeded with
// the real PostgreSQL 15 session of testdata/pg15.txt. A message either
// parses into a well-formed event or fails with a ParseError; a fresh
// parser agrees with the long-lived one, so no state leaks between
// messages (the xid aside, which is meant to).
func FuzzParse(f *testing.F) {
	for _, m := range readCorpus(f, "testdata/pg15.txt") {
		f.Add(m.Data)
	}
	for _, s := range []string{
		`table public.items: INSERT: k[text]:'hello world, it''s x[integer]:1 ''' v[integer]:2`,
		`table "public"."typ": INSERT: "id"[integer]:2 "t"["text"]:'q'`,
		"COMMIT 2727 (at 2026-11-24 21:41:32.029864+05:30)",
		"table public.items, public.kv: TRUNCATE: restart_seqs",
	} {
		f.Add([]byte(s))
	}
	const lsn = pglogrepl.LSN(0x16B374D848)
	long := New()
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		ev, err := long.Parse(data, lsn)
		if !bytes.Equal(in, data) {
			t.Fatalf("Parse changed its input %q to %q", in, data)
		}
		fresh, ferr := New().Parse(data, lsn)
		if (err == nil) != (ferr == nil) {
			t.Fatalf("long-lived parser: %v; fresh parser: %v", err, ferr)
		}
		if err != nil {
			var pe *decode.ParseError
			if !errors.As(err, &pe) || pe.LSN != lsn || pe.Plugin != decode.TestDecoding || ev != nil {
				t.Fatalf("Parse(%q) = %v, %v; want nil and a test_decoding ParseError at %s", data, ev, err, lsn)
			}
			return
		}
		checkEvent(t, data, ev)
		ev.XID = fresh.XID
		if a, b := dump(ev), dump(fresh); a != b {
			t.Fatalf("Parse(%q): long-lived parser gives\n%s\nfresh parser gives\n%s", data, a, b)
		}
	})
}

func checkEvent(t *testing.T, data []byte, ev *decode.Event) {
	t.Helper()
	if ev.Kind < decode.KindBegin || ev.Kind > decode.KindMessage {
		t.Fatalf("Parse(%q): kind %s", data, ev.Kind)
	}
	if ev.Kind != decode.KindChange {
		if ev.Op != 0 || len(ev.New)+len(ev.Old)+len(ev.Truncated) > 0 {
			t.Fatalf("Parse(%q): %s with change fields: %s", data, ev.Kind, dump(ev))
		}
		return
	}
	switch ev.Op {
	case decode.Insert:
		if len(ev.Old) > 0 {
			t.Fatalf("Parse(%q): insert with an old row", data)
		}
	case decode.Delete:
		if len(ev.New)+len(ev.UnchangedToast) > 0 {
			t.Fatalf("Parse(%q): delete with a new row", data)
		}
	case decode.Update:
	case decode.Truncate:
		if len(ev.Truncated) == 0 || ev.Table != (decode.Table{}) || len(ev.New)+len(ev.Old) > 0 {
			t.Fatalf("Parse(%q): malformed truncate %s", data, dump(ev))
		}
	default:
		t.Fatalf("Parse(%q): change without an operation", data)
	}
	tables := ev.Truncated
	if ev.Op != decode.Truncate {
		tables = []decode.Table{ev.Table}
	}
	for _, tb := range tables {
		if tb.Schema == "" || tb.Name == "" || !strings.Contains(string(data), tb.Raw) {
			t.Fatalf("Parse(%q): table %+v", data, tb)
		}
	}
	for _, c := range append(ev.New[:len(ev.New):len(ev.New)], ev.Old...) {
		if c.Name == "" || c.Type == "" {
			t.Fatalf("Parse(%q): column without a name or type: %s", data, dumpColumn(c))
		}
		switch {
		case c.Null:
			if c.Value != nil || c.Kind != decode.String {
				t.Fatalf("Parse(%q): null column with a value: %s", data, dumpColumn(c))
			}
		case c.Value == nil:
			t.Fatalf("Parse(%q): column neither null nor valued: %s", data, dumpColumn(c))
		case c.Kind == decode.Number && !isNumber(c.Value),
			c.Kind == decode.Bool && string(c.Value) != "true" && string(c.Value) != "false":
			t.Fatalf("Parse(%q): %s", data, dumpColumn(c))
		}
	}
}

// FuzzRoundTrip prints a row as test_decoding would, with arbitrary
// identifiers and text, and checks that parsing gives it back.
func FuzzRoundTrip(f *testing.F) {
	f.Add("public", "items", "name", uint8(0), "it's a x[integer]:1 ''", "")
	f.Add("My Schema", `T."x`, `"Order Id"`, uint8(3), "héllo\nwörld", "'")
	f.Add("s", "t", "new-tuple: c", uint8(5), " new-tuple: ", "unchanged-toast-datum")
	types := []string{"text", "character varying", "integer[]", `"we]:ird"`, `"My Schema"."t y"[]`, "timestamp with time zone"}
	p := New()
	f.Fuzz(func(t *testing.T, schema, table, col string, typ uint8, v1, v2 string) {
		if schema == "" || table == "" || col == "" {
			return // Postgres has no empty identifiers
		}
		typName := types[int(typ)%len(types)]
		line := "table " + quoteIdent(schema) + "." + quoteIdent(table) + ": UPDATE: old-key: " +
			quoteIdent(col) + "[" + typName + "]:" + quoteLiteral(v1) + " new-tuple: " +
			quoteIdent(col) + "[" + typName + "]:" + quoteLiteral(v2) + " n[integer]:-1"
		ev, err := p.Parse([]byte(line), 1)
		if err != nil {
			t.Fatalf("Parse(%q): %v", line, err)
		}
		want := []string{schema, table, col, typName, v1, col, typName, v2}
		if len(ev.Old) != 1 || len(ev.New) != 2 {
			t.Fatalf("Parse(%q) = %s", line, dump(ev))
		}
		got := []string{ev.Table.Schema, ev.Table.Name, ev.Old[0].Name, ev.Old[0].Type, string(ev.Old[0].Value),
			ev.New[0].Name, ev.New[0].Type, string(ev.New[0].Value)}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("Parse(%q)\n got %q\nwant %q", line, got, want)
			}
		}
	})
}

// quoteIdent quotes always, as test_decoding does with quote_all_identifiers.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteLiteral is print_literal's default case.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
