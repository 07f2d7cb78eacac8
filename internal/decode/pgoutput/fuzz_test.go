package pgoutput

import (
	"bytes"
	"errors"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// FuzzParse feeds arbitrary messages to a parser that has seen the real
// session of testdata/pg15.txt (so it knows its relations), both as plain
// and as streamed messages. A message either decodes into a well-formed
// event or fails with a pgoutput ParseError; it never panics, and the
// input is never changed.
func FuzzParse(f *testing.F) {
	corpus := readCorpus(f, "testdata/pg15.txt")
	for _, m := range corpus {
		f.Add(m.Data, false)
	}
	for _, m := range readCorpus(f, "testdata/pg15-streaming.txt")[:40] {
		f.Add(m.Data, true)
	}
	const lsn = pglogrepl.LSN(0x16B374D848)
	f.Fuzz(func(t *testing.T, data []byte, streamed bool) {
		p := New()
		for _, m := range corpus {
			if _, err := p.Parse(m.Data, m.LSN); err != nil {
				t.Fatal(err)
			}
		}
		in := bytes.Clone(data)
		var ev *decode.Event
		var err error
		if streamed {
			ev, err = p.ParseStreamed(data, lsn, 42)
		} else {
			ev, err = p.Parse(data, lsn)
		}
		if !bytes.Equal(in, data) {
			t.Fatalf("Parse changed its input %x to %x", in, data)
		}
		if err != nil {
			var pe *decode.ParseError
			if !errors.As(err, &pe) || pe.LSN != lsn || pe.Plugin != decode.PGOutput || ev != nil {
				t.Fatalf("Parse(%x) = %v, %v; want nil and a pgoutput ParseError at %s", data, ev, err, lsn)
			}
			return
		}
		checkEvent(t, data, ev)
	})
}

func checkEvent(t *testing.T, data []byte, ev *decode.Event) {
	t.Helper()
	if ev.Kind == 0 || ev.LSN == 0 {
		t.Fatalf("Parse(%x): event without a kind or LSN: %s", data, dump(ev))
	}
	if ev.Kind != decode.KindChange {
		if ev.Op != 0 || len(ev.New) > 0 || len(ev.Old) > 0 {
			t.Fatalf("Parse(%x): %s with a change: %s", data, ev.Kind, dump(ev))
		}
		return
	}
	if ev.Op == decode.Truncate {
		if len(ev.Truncated) == 0 {
			t.Fatalf("Parse(%x): truncate of no table", data)
		}
		return
	}
	if ev.Table.Raw == "" || (ev.Op == decode.Insert && len(ev.Old) > 0) || (ev.Op == decode.Delete && len(ev.New) > 0) {
		t.Fatalf("Parse(%x): malformed change: %s", data, dump(ev))
	}
	for _, c := range append(ev.New[:len(ev.New):len(ev.New)], ev.Old...) {
		if c.Name == "" || c.Type == "" || c.Null != (c.Value == nil) {
			t.Fatalf("Parse(%x): malformed column %s", data, dumpColumn(c))
		}
		if c.Kind == decode.Bool && string(c.Value) != "true" && string(c.Value) != "false" {
			t.Fatalf("Parse(%x): boolean %s", data, dumpColumn(c))
		}
	}
}
