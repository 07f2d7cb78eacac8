package testdecoding

import (
	"bytes"
	"encoding/json"
	"flag"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/decode/decodetest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from what the parser gives")

// readCorpus reads lines "LSN JSON-string", as this query prints them:
//
//	SELECT lsn || ' ' || to_json(data)::text FROM pg_logical_slot_peek_changes(...)
func readCorpus(tb testing.TB, path string) []decodetest.Message {
	return decodetest.ReadCorpus(tb, path, func(s string) ([]byte, error) {
		var data string
		err := json.Unmarshal([]byte(s), &data)
		return []byte(data), err
	})
}

func dump(ev *decode.Event) string { return decodetest.Dump(ev, 0) }

func dumpColumn(c decode.Column) string { return decodetest.DumpColumn(c, 0) }

// TestGolden parses every message of a real session (PostgreSQL 15's test_decoding), in order
// with one Parser, and compares the events with the golden file.
// Regenerate with go test -update and review the diff.
func TestGolden(t *testing.T) {
	p := New()
	var got bytes.Buffer
	for _, m := range readCorpus(t, "testdata/pg15.txt") {
		ev, err := p.Parse(m.Data, m.LSN)
		if err != nil {
			t.Fatalf("%v", err)
		}
		got.WriteString(dump(ev))
		got.WriteByte('\n')
	}
	decodetest.Golden(t, "testdata/pg15.golden", got.Bytes(), *update)
}
