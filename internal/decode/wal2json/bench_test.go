package wal2json

import "testing"

// A row of five columns, one of which needs unescaping, as wal2json prints it.
var insert = []byte(`{"action":"I","xid":2445,"timestamp":"2026-11-24 16:06:09.837805+00","lsn":"0/158CDF70","schema":"public","table":"orders","columns":[{"name":"id","type":"bigint","value":123456},{"name":"customer","type":"text","value":"Ada Lovelace"},{"name":"total","type":"numeric(12,2)","value":12.50},{"name":"created","type":"timestamp with time zone","value":"2025-06-30 12:00:00+00"},{"name":"note","type":"text","value":"it\"s fine"}]}`)

func bench(b *testing.B, msgs ...[]byte) {
	p := New()
	n := 0
	for _, m := range msgs {
		n += len(m)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range msgs {
			if _, err := p.Parse(m, 1); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkParseInsert(b *testing.B) { bench(b, insert) }

func BenchmarkParseUpdateFull(b *testing.B) {
	bench(b, []byte(`{"action":"U","xid":2445,"timestamp":"2026-11-24 16:06:09.837805+00","lsn":"0/158CDF70","schema":"Sales Dept","table":"Order Items","columns":[{"name":"Order Id","type":"bigint","value":123456},{"name":"Customer","type":"text","value":"Ada Lovelace"},{"name":"Total","type":"numeric(12,2)","value":12.50},{"name":"Doc","type":"jsonb","value":"{\"k\": [1, 2], \"s\": \"x\"}"},{"name":"Note","type":"text","value":"fine"}],"identity":[{"name":"Order Id","type":"bigint","value":123456},{"name":"Customer","type":"text","value":"Ada Lovelace"},{"name":"Total","type":"numeric(12,2)","value":12.00},{"name":"Doc","type":"jsonb","value":"{\"k\": [1, 2], \"s\": \"x\"}"},{"name":"Note","type":"text","value":"fine"}]}`))
}

// A transaction of three rows, as the pipeline sees it: per row, divide by 5.
func BenchmarkParseTransaction(b *testing.B) {
	bench(b, []byte(`{"action":"B","xid":2445,"timestamp":"2026-11-24 16:06:09.837805+00","lsn":"0/158CE0A0","nextlsn":"0/158CE0D0"}`),
		insert, insert, insert,
		[]byte(`{"action":"C","xid":2445,"timestamp":"2026-11-24 16:06:09.837805+00","lsn":"0/158CE0A0","nextlsn":"0/158CE0D0"}`))
}

// The whole real session of testdata/pg15.txt.
func BenchmarkParseCorpus(b *testing.B) {
	var msgs [][]byte
	for _, m := range readCorpus(b, "testdata/pg15.txt") {
		msgs = append(msgs, m.Data)
	}
	bench(b, msgs...)
}
