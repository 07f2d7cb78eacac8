package format

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// readEvent is a snapshot row as the snapshot publishes it: the row in New,
// no Old, and the position of the high-watermark transaction it is placed in.
func readEvent(t decode.Table, row []decode.Column) *decode.Event {
	ev := change(42, decode.Read, t, row, nil)
	ev.LSN, ev.CommitLSN = pglogrepl.LSN(0x16B3748), pglogrepl.LSN(0x16B3800)
	ev.CommitTime = time.Date(2026, 12, 3, 12, 0, 0, 123456000, time.UTC)
	return ev
}

// docs/formats.md, "Snapshot records (read)": every format with every plugin.
func TestReadRecords(t *testing.T) {
	orders := table("public", "orders", "public.orders")
	row := []decode.Column{
		col("code", "character varying(32)", "A-7", decode.String),
		col("n", "integer", "3", decode.Number),
		nullCol("note", "text"),
	}
	const (
		fullTail = `"change": {"kind": "read", "schema": "public", "table": "orders", "columnnames": ["code", "n", "note"], "columntypes": ["character varying(32)", "integer", "text"], "columnvalues": ["A-7", 3, null]}}`
		jsonLine = `{"op":"read","schema":"public","table":"orders","xid":42,"lsn":"0/16B3748","commit_lsn":"0/16B3800","commit_time":"2026-12-03T12:00:00.123456Z","pk":{"code":"A-7"},"before":null,"after":{"code":"A-7","n":3,"note":null},"unchanged_toast":[]}`
	)
	for _, tc := range []struct {
		formatter Name
		full      bool
		plugin    decode.Plugin
		want      string
	}{
		{CSV, false, decode.TestDecoding, `0,CDC,42,public.orders,READ,A-7`},
		{CSV, false, decode.Wal2JSON, `0,CDC,42,public.orders,read,A-7`},
		{CSV, false, decode.PGOutput, `0,CDC,42,public.orders,READ,A-7`},
		{CSVPayload, false, decode.TestDecoding, `0,CDC,{"xid": "42", "table": "public.orders", "operation": "READ", "pkey": "A-7"}`},
		{CSVPayload, false, decode.Wal2JSON, `0,CDC,{"xid": 42, "table": "public.orders", "operation": "read", "pkey": "A-7"}`},
		{CSVPayload, false, decode.PGOutput, `0,CDC,{"xid": 42, "table": "public.orders", "operation": "READ", "pkey": "A-7"}`},
		{CSVPayload, true, decode.TestDecoding, `0,CDC,{"xid": "42", ` + fullTail},
		{CSVPayload, true, decode.Wal2JSON, `0,CDC,{"xid": 42, ` + fullTail},
		{CSVPayload, true, decode.PGOutput, `0,CDC,{"xid": 42, ` + fullTail},
		{JSON, false, decode.TestDecoding, jsonLine},
		{JSON, false, decode.Wal2JSON, jsonLine},
		{JSON, false, decode.PGOutput, jsonLine},
	} {
		name := string(tc.formatter)
		if tc.full {
			name = "full-change"
		}
		t.Run(name+"/"+tc.plugin.String(), func(t *testing.T) {
			f, err := New(tc.formatter, Options{Plugin: tc.plugin, FullChange: tc.full})
			if err != nil {
				t.Fatal(err)
			}
			ev := readEvent(orders, row)
			if got := string(f.Append(nil, ev, ev.Table, []string{"code"})); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// A read is an insert of the row as it is: with any key (composite, none,
// one that needs quoting) its record is the insert's but for the operation.
func TestReadIsShapedAsInsert(t *testing.T) {
	tbl := table("Sales", "Or,der", `"Sales"."Or,der"`)
	row := []decode.Column{
		col("a", "integer", "1", decode.Number), col("b", "text", `x,"y"`, decode.String),
		col("j", "jsonb", `{"k": [1]}`, decode.String), col("v", "text", "Zoë", decode.String),
	}
	keys := map[string][]string{"single": {"a"}, "quoted": {"b"}, "composite": {"b", "a"}, "none": nil}
	for _, name := range Names {
		for _, full := range []bool{false, true} {
			for _, p := range decode.Plugins {
				f, err := New(name, Options{Plugin: p, FullChange: full})
				if err != nil {
					continue // CSV cannot carry the full change
				}
				for what, key := range keys {
					ins := change(9, decode.Insert, tbl, row, nil)
					rd := change(9, decode.Read, tbl, row, nil)
					want := string(f.Append(nil, ins, tbl, key))
					want = strings.Replace(want, operation(p, decode.Insert), operation(p, decode.Read), 1)
					if name == JSON || full {
						want = strings.Replace(want, `"insert"`, `"read"`, 1)
					}
					if got := string(f.Append(nil, rd, tbl, key)); got != want {
						t.Errorf("%s full=%t %s, %s key:\ngot  %s\nwant %s", name, full, p, what, got, want)
					}
				}
			}
		}
	}
}

// Each operation has its own text with every plugin, never Op(n); the
// plugin decides only the case.
func TestOperationNamesEveryOp(t *testing.T) {
	ops := []decode.Op{decode.Insert, decode.Update, decode.Delete, decode.Truncate, decode.Read}
	for _, p := range decode.Plugins {
		seen := map[string]bool{}
		for _, op := range ops {
			got := operation(p, op)
			want := op.String()
			if p != decode.Wal2JSON {
				want = strings.ToUpper(want)
			}
			if got != want || seen[got] {
				t.Errorf("operation(%s, %d) = %q, want %q, once", p, op, got, want)
			}
			seen[got] = true
		}
	}
}

// A read's JSON record is valid and has no before, whatever the snapshot
// leaves in Old.
func TestReadJSONHasNoBefore(t *testing.T) {
	ev := readEvent(table("public", "t", "public.t"), []decode.Column{col("id", "integer", "1", decode.Number)})
	ev.Old = []decode.Column{col("id", "integer", "0", decode.Number)}
	f, _ := New(JSON, Options{Plugin: decode.PGOutput})
	var rec struct {
		Op     string          `json:"op"`
		Before json.RawMessage `json:"before"`
		PK     map[string]int  `json:"pk"`
	}
	out := f.Append(nil, ev, ev.Table, []string{"id"})
	if err := json.Unmarshal(out, &rec); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if rec.Op != "read" || string(rec.Before) != "null" || rec.PK["id"] != 1 {
		t.Errorf("record %s: want op read, before null, pk from the row", out)
	}
}

// The pk partition key and logs use KeyText: a row's read gives the text its
// insert and its later updates give, so that they share a shard.
func TestReadKeyTextIsTheRowsKey(t *testing.T) {
	tbl := table("public", "t", "public.t")
	row := []decode.Column{col("a", "integer", "1", decode.Number), col("b", "text", "x y", decode.String), col("v", "text", "old", decode.String)}
	updated := []decode.Column{col("a", "integer", "1", decode.Number), col("b", "text", "x y", decode.String), col("v", "text", "new", decode.String)}
	for _, key := range [][]string{{"a"}, {"b", "a"}} {
		read := KeyText(change(1, decode.Read, tbl, row, nil), key)
		ins := KeyText(change(1, decode.Insert, tbl, row, nil), key)
		upd := KeyText(change(2, decode.Update, tbl, updated, row[:1]), key)
		if read == "" || read != ins || read != upd {
			t.Errorf("key %q: read %q, insert %q, update %q", key, read, ins, upd)
		}
	}
}

// docs/formats.md §7 shows what the formatters write for its example row.
func TestReadDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/formats.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## 7. Snapshot records (`read`)")
	if !ok {
		t.Fatal("docs/formats.md lacks its section on snapshot records")
	}
	ev := change(2491, decode.Read, table("public", "orders", "public.orders"), []decode.Column{
		col("code", "character varying(32)", "A-7", decode.String),
		col("n", "integer", "3", decode.Number),
		col("total", "numeric(12,2)", "12.50", decode.Number),
	}, nil)
	ev.LSN, ev.CommitLSN = pglogrepl.LSN(0x169DD5E0), pglogrepl.LSN(0x169DD678)
	ev.CommitTime = time.Date(2026, 11, 24, 16, 7, 38, 56205000, time.UTC)
	for _, ex := range []struct {
		name   Name
		plugin decode.Plugin
		full   bool
	}{{CSV, decode.TestDecoding, false}, {CSVPayload, decode.Wal2JSON, false}, {CSVPayload, decode.Wal2JSON, true}, {JSON, decode.PGOutput, false}} {
		f, err := New(ex.name, Options{Plugin: ex.plugin, FullChange: ex.full})
		if err != nil {
			t.Fatal(err)
		}
		line := "\n  `" + string(f.Append(nil, ev, ev.Table, []string{"code"})) + "`\n"
		if !strings.Contains(section, line) {
			t.Errorf("docs/formats.md §7 lacks the example line%s", line)
		}
	}
}
