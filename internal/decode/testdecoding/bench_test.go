package testdecoding

import "testing"

// A row of five columns, one of which needs unescaping.
var insert = []byte(`table public.orders: INSERT: id[bigint]:123456 customer[text]:'Ada Lovelace' total[numeric]:12.50 created[timestamp with time zone]:'2025-06-30 12:00:00+00' note[text]:'it''s fine'`)

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

func BenchmarkParseInsertQuotedNames(b *testing.B) {
	bench(b, []byte(`table "Sales"."Order Items": INSERT: "Order Id"[bigint]:123456 "Customer"[text]:'Ada Lovelace' "Total"[numeric]:12.50 "Created At"[timestamp with time zone]:'2025-06-30 12:00:00+00' "Note"[text]:'fine'`))
}

func BenchmarkParseUpdateKeyChange(b *testing.B) {
	bench(b, []byte(`table public.kv: UPDATE: old-key: k[text]:'key with spaces, and commas' new-tuple: k[text]:'new key, again' v[text]:'v' n[integer]:7 t[boolean]:true`))
}

// A transaction of three rows, as the pipeline sees it: per row, divide by 5.
func BenchmarkParseTransaction(b *testing.B) {
	bench(b, []byte("BEGIN 2685"), insert, insert, insert, []byte("COMMIT 2685"))
}

// The whole real session of testdata/pg15.txt.
func BenchmarkParseCorpus(b *testing.B) {
	var msgs [][]byte
	for _, m := range readCorpus(b, "testdata/pg15.txt") {
		msgs = append(msgs, m.Data)
	}
	bench(b, msgs...)
}
