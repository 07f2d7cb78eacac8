package testdecoding

import (
	"flag"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/decode/decodetest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from what the parser gives")

func readCorpus(tb testing.TB, path string) []decodetest.Message {
	return decodetest.ReadCorpus(tb, path, decodetest.JSONText)
}

func dump(ev *decode.Event) string { return decodetest.Dump(ev, 0) }

func dumpColumn(c decode.Column) string { return decodetest.DumpColumn(c, 0) }

// TestGolden parses every message of a real session (PostgreSQL 15's test_decoding), in order
// with one Parser, and compares the events with the golden file.
// Regenerate with go test -update and review the diff.
func TestGolden(t *testing.T) {
	decodetest.ParseGolden(t, "testdata/pg15.txt", "testdata/pg15.golden", decodetest.JSONText, New().Parse, 0, *update)
}
