package format

import (
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

func col(name, typ, value string, kind decode.ValueKind) decode.Column {
	return decode.Column{Name: name, Type: typ, Value: []byte(value), Kind: kind}
}

func nullCol(name, typ string) decode.Column {
	return decode.Column{Name: name, Type: typ, Null: true}
}

func table(schema, name, raw string) decode.Table {
	return decode.Table{Schema: schema, Name: name, Raw: raw}
}

func change(xid uint32, op decode.Op, t decode.Table, newCols, oldCols []decode.Column) *decode.Event {
	return &decode.Event{Kind: decode.KindChange, XID: xid, Op: op, Table: t, New: newCols, Old: oldCols}
}

// The lines docs/formats.md gives as the original's output, and its rules where
// the original was wrong, one case each.
func TestFormatsContract(t *testing.T) {
	blue := table("public", "blue", "public.blue")
	orders := table("public", "orders", "public.orders")
	ordersNew := []decode.Column{
		col("code", "character varying(32)", "A-7", decode.String),
		col("n", "integer", "3", decode.Number),
		col("total", "numeric(12,2)", "12.50", decode.Number),
	}
	ordersKey := []decode.Column{col("code", "character varying(32)", "A-7", decode.String)}
	for _, tc := range []struct {
		name      string
		formatter Name
		plugin    decode.Plugin
		full      bool
		ev        *decode.Event
		key       []string
		want      string
	}{
		{"CSV test_decoding", "CSV", decode.TestDecoding, false,
			change(1, decode.Update, blue, []decode.Column{col("id", "integer", "123456", decode.Number)}, nil),
			[]string{"id"}, "0,CDC,1,public.blue,UPDATE,123456"},
		{"CSV wal2json lower case", "CSV", decode.Wal2JSON, false,
			change(1, decode.Update, blue, []decode.Column{col("id", "integer", "123456", decode.Number)}, nil),
			[]string{"id"}, "0,CDC,1,public.blue,update,123456"},
		{"CSV whole text key, quoted", "CSV", decode.TestDecoding, false,
			change(7, decode.Insert, blue, []decode.Column{col("k", "text", "hello world, \"x\"", decode.String)}, nil),
			[]string{"k"}, `0,CDC,7,public.blue,INSERT,"hello world, ""x"""`},
		{"CSV composite key", "CSV", decode.TestDecoding, false,
			change(7, decode.Insert, blue, []decode.Column{col("a", "integer", "1", decode.Number), col("b", "text", "a", decode.String)}, nil),
			[]string{"a", "b"}, `0,CDC,7,public.blue,INSERT,"[1,""a""]"`},
		{"CSV quoted identifier table", "CSV", decode.TestDecoding, false,
			change(7, decode.Delete, table("public", "Order", `public."Order"`), nil, []decode.Column{col("id", "integer", "5", decode.Number)}),
			[]string{"id"}, `0,CDC,7,"public.""Order""",DELETE,5`},
		{"CSV truncate", "CSV", decode.Wal2JSON, false,
			&decode.Event{Kind: decode.KindChange, XID: 9, Op: decode.Truncate},
			[]string{"id"}, "0,CDC,9,public.blue,truncate,"},
		{"CSV key-changing update emits the new key", "CSV", decode.TestDecoding, false,
			change(3, decode.Update, blue, []decode.Column{col("id", "integer", "2", decode.Number)}, []decode.Column{col("id", "integer", "1", decode.Number)}),
			[]string{"id"}, "0,CDC,3,public.blue,UPDATE,2"},
		{"CSV wal2json delete reads the old key", "CSV", decode.Wal2JSON, false,
			change(3, decode.Delete, blue, nil, []decode.Column{col("id", "integer", "1", decode.Number)}),
			[]string{"id"}, "0,CDC,3,public.blue,delete,1"},
		{"CSVPayload test_decoding xid is a string", "CSVPayload", decode.TestDecoding, false,
			change(1, decode.Update, blue, []decode.Column{col("id", "integer", "123456", decode.Number)}, nil),
			[]string{"id"}, `0,CDC,{"xid": "1", "table": "public.blue", "operation": "UPDATE", "pkey": "123456"}`},
		{"CSVPayload wal2json xid is a number", "CSVPayload", decode.Wal2JSON, false,
			change(1, decode.Update, blue, []decode.Column{col("id", "integer", "123456", decode.Number)}, nil),
			[]string{"id"}, `0,CDC,{"xid": 1, "table": "public.blue", "operation": "update", "pkey": "123456"}`},
		{"CSVPayload non-ASCII and composite", "CSVPayload", decode.Wal2JSON, false,
			change(2, decode.Insert, blue, []decode.Column{col("a", "integer", "1", decode.Number), col("b", "text", "Zoë 😀", decode.String)}, nil),
			[]string{"a", "b"}, `0,CDC,{"xid": 2, "table": "public.blue", "operation": "insert", "pkey": [1, "Zo\u00eb \ud83d\ude00"]}`},
		{"full change insert", "CSVPayload", decode.Wal2JSON, true,
			change(30355, decode.Insert, orders, ordersNew, nil), []string{"code"},
			`0,CDC,{"xid": 30355, "change": {"kind": "insert", "schema": "public", "table": "orders", "columnnames": ["code", "n", "total"], "columntypes": ["character varying(32)", "integer", "numeric(12,2)"], "columnvalues": ["A-7", 3, 12.50]}}`},
		{"full change update", "CSVPayload", decode.Wal2JSON, true,
			change(30356, decode.Update, orders, ordersNew, ordersKey), []string{"code"},
			`0,CDC,{"xid": 30356, "change": {"kind": "update", "schema": "public", "table": "orders", "columnnames": ["code", "n", "total"], "columntypes": ["character varying(32)", "integer", "numeric(12,2)"], "columnvalues": ["A-7", 3, 12.50], "oldkeys": {"keynames": ["code"], "keytypes": ["character varying(32)"], "keyvalues": ["A-7"]}}}`},
		{"full change delete", "CSVPayload", decode.Wal2JSON, true,
			change(30357, decode.Delete, orders, nil, ordersKey), []string{"code"},
			`0,CDC,{"xid": 30357, "change": {"kind": "delete", "schema": "public", "table": "orders", "oldkeys": {"keynames": ["code"], "keytypes": ["character varying(32)"], "keyvalues": ["A-7"]}}}`},
		{"full change null, bool, NaN, json text, no key", "CSVPayload", decode.TestDecoding, true,
			change(5, decode.Insert, table("public", "nokey", "public.nokey"), []decode.Column{
				nullCol("a", "integer"), col("b", "boolean", "true", decode.Bool), col("c", "numeric", "NaN", decode.Number),
				col("d", "jsonb", `{"k": [1, 2]}`, decode.String)}, nil), nil,
			`0,CDC,{"xid": "5", "change": {"kind": "insert", "schema": "public", "table": "nokey", "columnnames": ["a", "b", "c", "d"], "columntypes": ["integer", "boolean", "numeric", "jsonb"], "columnvalues": [null, true, "NaN", "{\"k\": [1, 2]}"]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := New(tc.formatter, Options{Plugin: tc.plugin, FullChange: tc.full})
			if err != nil {
				t.Fatal(err)
			}
			tbl := tc.ev.Table
			if tc.ev.Op == decode.Truncate {
				tbl = blue
			}
			if got := string(f.Append(nil, tc.ev, tbl, tc.key)); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestUnchangedToastIsListedNotNull(t *testing.T) {
	ev := change(4, decode.Update, table("public", "docs", "public.docs"),
		[]decode.Column{col("id", "integer", "1", decode.Number), col("n", "integer", "2", decode.Number)}, nil)
	ev.UnchangedToast = []string{"body"}
	f, _ := New("CSVPayload", Options{Plugin: decode.Wal2JSON, FullChange: true})
	want := `0,CDC,{"xid": 4, "change": {"kind": "update", "schema": "public", "table": "docs", "columnnames": ["id", "n"], "columntypes": ["integer", "integer"], "columnvalues": [1, 2], "unchangedtoast": ["body"]}}`
	if got := string(f.Append(nil, ev, ev.Table, []string{"id"})); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestPyStringEscapes(t *testing.T) {
	for in, want := range map[string]string{
		"plain":          `"plain"`,
		"q\"b\\s/":       `"q\"b\\s/"`,
		"\n\r\t\b\f\x01": `"\n\r\t\b\f\u0001"`,
		"\x7f":           `"\u007f"`,
		"é€😀":            `"\u00e9\u20ac\ud83d\ude00"`,
		"\xff":           `"\ufffd"`,
	} {
		if got := string(appendPyString(nil, []byte(in))); got != want {
			t.Errorf("appendPyString(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestIsJSONNumber(t *testing.T) {
	for in, want := range map[string]bool{
		"0": true, "-1": true, "12.50": true, "1e10": true, "1.5E-3": true,
		"": false, "NaN": false, "Infinity": false, "-Infinity": false, "01": false, "1.": false, ".5": false, "1e": false,
	} {
		if got := isJSONNumber([]byte(in)); got != want {
			t.Errorf("isJSONNumber(%q) = %t", in, got)
		}
	}
}
