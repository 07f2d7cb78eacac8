package format

import (
	"testing"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// BenchmarkAppend measures one record of a typical update (key, numbers, a
// text, a timestamp and a jsonb value) per formatter, appended into a
// reused buffer as the handler does: 0 allocs/op is the point.
func BenchmarkAppend(b *testing.B) {
	ev := change(1234, decode.Update, table("public", "orders", "public.orders"), []decode.Column{
		col("id", "bigint", "123456", decode.Number),
		col("n", "integer", "456", decode.Number),
		col("body", "text", "c4ca4238a0b923820dcc509a6f75849b \"quoted\" Zoë", decode.String),
		col("ts", "timestamp with time zone", "2026-11-24 16:46:49.965+00", decode.String),
		col("j", "jsonb", `{"k": 123456, "v": "x", "a": [1, 2, 3]}`, decode.String),
		nullCol("note", "text"),
	}, []decode.Column{col("id", "bigint", "123456", decode.Number)})
	ev.LSN, ev.CommitLSN = 0x16_B374D848, 0x16_B374F000
	ev.CommitTime = time.Date(2026, 11, 24, 16, 46, 49, 965000000, time.UTC)
	key := []string{"id"}
	for _, v := range []struct {
		name Name
		full bool
	}{{"CSV", false}, {"CSVPayload", false}, {"CSVPayload", true}, {"JSON", false}} {
		name := string(v.name)
		if v.full {
			name += "/full-change"
		}
		b.Run(name, func(b *testing.B) {
			f, err := New(v.name, Options{Plugin: decode.Wal2JSON, FullChange: v.full})
			if err != nil {
				b.Fatal(err)
			}
			buf := f.Append(nil, ev, ev.Table, key)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf = f.Append(buf[:0], ev, ev.Table, key)
			}
		})
	}
}
