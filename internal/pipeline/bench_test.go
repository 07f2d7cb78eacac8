package pipeline

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/catalog/catalogtest"
	"github.com/pg2kinesis/pg2kinesis/internal/checkpoint"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/filter"
	"github.com/pg2kinesis/pg2kinesis/internal/format"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
)

// BenchmarkHandler measures decode → filter → format → sink hand-over for
// one row of a 1000-row transaction, and of a single-row one, with a sink
// that acknowledges at once: the CPU pg2kinesis spends per row outside the
// network.
func BenchmarkHandler(b *testing.B) {
	for _, tc := range []struct {
		plugin decode.Plugin
		row    string
		begin  string
		commit string
	}{
		{decode.TestDecoding, `table public.t: INSERT: id[bigint]:123456 n[integer]:456 body[text]:'c4ca4238a0b923820dcc509a6f75849bc4ca4238a0b923820dcc509a6f75849bc4ca4238a0b923820dcc509a6f75849b' ts[timestamp with time zone]:'2026-11-24 16:46:49.965+00' j[jsonb]:'{"k": 123456, "v": "x"}'`,
			"BEGIN 1234", "COMMIT 1234"},
		{decode.Wal2JSON, `{"action":"I","xid":1234,"timestamp":"2026-11-24 16:06:09.837805+00","lsn":"0/158CDF70","schema":"public","table":"t","columns":[{"name":"id","type":"bigint","value":123456},{"name":"n","type":"integer","value":456},{"name":"body","type":"text","value":"c4ca4238a0b923820dcc509a6f75849bc4ca4238a0b923820dcc509a6f75849bc4ca4238a0b923820dcc509a6f75849b"},{"name":"ts","type":"timestamp with time zone","value":"2026-11-24 16:46:49.965+00"},{"name":"j","type":"jsonb","value":"{\"k\": 123456, \"v\": \"x\"}"}],"pk":[{"name":"id","type":"bigint"}]}`,
			`{"action":"B","xid":1234,"timestamp":"2026-11-24 16:06:09.837805+00","lsn":"0/158CDF70","nextlsn":"0/158CDFA0"}`,
			`{"action":"C","xid":1234,"timestamp":"2026-11-24 16:06:09.837805+00","lsn":"0/158CDF70","nextlsn":"0/158CDFA0"}`},
	} {
		for _, shape := range []struct {
			name string
			rows int
		}{{"batch", 1000}, {"single", 1}} {
			for _, name := range format.Names {
				b.Run(fmt.Sprintf("%s/%s/%s", tc.plugin, shape.name, name), func(b *testing.B) {
					benchHandler(b, tc.plugin, name, shape.rows, tc.begin, tc.row, tc.commit)
				})
			}
		}
	}
}

func benchHandler(b *testing.B, plugin decode.Plugin, name format.Name, rows int, beginText, rowText, commitText string) {
	p, _ := newParser(plugin)
	f, _ := format.New(name, format.Options{Plugin: plugin})
	keys := catalog.New(catalogtest.Fixed(catalog.Keys{{Schema: "public", Table: "t"}: catalog.PK("id")}), nil)
	src := source.New(source.Config{})
	tr := checkpoint.New(0)
	snk := &countingSink{}
	snk.ack = func(seqs []uint64) { tr.Ack(seqs...) }
	h := newChangeHandler(src, tr, p, filter.New(nil, nil), keys, f, snk, Config{}, nil)
	ctx := context.Background()
	row, begin, commit := []byte(rowText), []byte(beginText), []byte(commitText)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%rows == 0 {
			_ = h.HandleData(ctx, pglogrepl.XLogData{WALStart: pglogrepl.LSN(i), WALData: begin})
		}
		if err := h.HandleData(ctx, pglogrepl.XLogData{WALStart: pglogrepl.LSN(i), WALData: row}); err != nil {
			b.Fatal(err)
		}
		if i%rows == rows-1 {
			_ = h.HandleData(ctx, pglogrepl.XLogData{WALStart: pglogrepl.LSN(i), WALData: commit})
		}
	}
}
