package pgoutput

import (
	"bytes"
	"encoding/hex"
	"flag"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/decode/decodetest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from what the parser gives")

// readCorpus reads lines "LSN HEX", as this query prints them:
//
//	SELECT lsn || ' ' || encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes(...)
func readCorpus(tb testing.TB, path string) []decodetest.Message {
	return decodetest.ReadCorpus(tb, path, hex.DecodeString)
}

func dump(ev *decode.Event) string { return decodetest.Dump(ev, 80) }

func dumpColumn(c decode.Column) string { return decodetest.DumpColumn(c, 80) }

// TestGolden parses every message of two real sessions on PostgreSQL 15, in
// order with one Parser, and compares the events with the golden files:
// testdata/workload.sql in protocol 1, and testdata/streaming.sql in
// protocol 2 with streaming, where each streamed transaction's messages
// are parsed again with ParseStreamed at its Stream Commit (aborts are the
// spool's business and not applied here; the pipeline's tests cover them).
// Regenerate with go test -update and review the diff.
func TestGolden(t *testing.T) {
	for _, name := range []string{"pg15", "pg15-streaming"} {
		t.Run(name, func(t *testing.T) {
			p := New()
			held := map[uint32][]decodetest.Message{}
			var open uint32
			var got bytes.Buffer
			write := func(ev *decode.Event, err error) {
				if err != nil {
					t.Fatalf("%v", err)
				}
				got.WriteString(dump(ev))
				got.WriteByte('\n')
			}
			for _, m := range readCorpus(t, "testdata/"+name+".txt") {
				ev, err := p.Parse(m.Data, m.LSN)
				if err != nil {
					t.Fatalf("%v", err)
				}
				switch ev.Kind {
				case decode.KindStreamStart:
					open = ev.XID
				case decode.KindStreamed:
					held[open] = append(held[open], m)
					continue // the replay shows it
				case decode.KindStreamCommit:
					xid := ev.XID
					write(ev, nil)
					for _, h := range held[xid] {
						write(p.ParseStreamed(h.Data, h.LSN, xid))
					}
					delete(held, xid)
					continue
				case decode.KindStreamAbort:
					if ev.XID == ev.SubXID {
						delete(held, ev.XID)
					}
				}
				write(ev, nil)
			}
			decodetest.Golden(t, "testdata/"+name+".golden", got.Bytes(), *update)
		})
	}
}
