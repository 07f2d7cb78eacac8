package pgoutput

import (
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// BenchmarkParseInsert decodes one insert of the five-column row that the
// orders table of testdata/pg15.txt has (after its Relation message).
func BenchmarkParseInsert(b *testing.B) {
	msgs := readCorpus(b, "testdata/pg15.txt")
	p := New()
	var insert []byte
	for _, m := range msgs {
		ev, err := p.Parse(m.Data, m.LSN)
		if err != nil {
			b.Fatal(err)
		}
		if ev.Kind == decode.KindChange && ev.Op == decode.Insert && ev.Table.Name == "orders" {
			insert = m.Data
			break
		}
	}
	b.SetBytes(int64(len(insert)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Parse(insert, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseCorpus decodes the whole session, message by message.
func BenchmarkParseCorpus(b *testing.B) {
	msgs := readCorpus(b, "testdata/pg15.txt")
	b.ReportAllocs()
	for b.Loop() {
		p := New()
		for _, m := range msgs {
			if _, err := p.Parse(m.Data, m.LSN); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/msg")
}
