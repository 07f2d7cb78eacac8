package wal2json

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// seeds are the real messages of the golden workload.
func seeds(f *testing.F) {
	file, err := os.Open("../../pipeline/testdata/wal2json.input")
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m struct{ Data string }
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(m.Data))
	}
}

func FuzzParse(f *testing.F) {
	seeds(f)
	p := New()
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := p.Parse(data, 1)
		if err != nil {
			return
		}
		if ev.Kind == 0 {
			t.Fatalf("no kind for %q", data)
		}
		if ev.Kind == decode.KindChange && ev.Op == 0 {
			t.Fatalf("change without an operation for %q", data)
		}
		for _, c := range append(ev.New, ev.Old...) {
			if c.Name == "" && c.Type == "" {
				t.Fatalf("column without name and type for %q", data)
			}
		}
	})
}

func BenchmarkParseInsert(b *testing.B) {
	msg := []byte(`{"action":"I","xid":2445,"timestamp":"2026-11-24 16:06:09.837805+00","lsn":"0/158CDF70","schema":"public","table":"orders","columns":[{"name":"id","type":"bigint","value":123456},{"name":"customer","type":"text","value":"Ada Lovelace"},{"name":"total","type":"numeric(12,2)","value":12.50},{"name":"created","type":"timestamp with time zone","value":"2025-06-30 12:00:00+00"},{"name":"note","type":"text","value":"it\"s fine"}]}`)
	p := New()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := p.Parse(msg, 1); err != nil {
			b.Fatal(err)
		}
	}
}
