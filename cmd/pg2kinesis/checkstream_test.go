package main

import (
	"fmt"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis"
)

// failures is a testing.TB that records failures instead of failing; its
// Fatalf panics with itself, which check recovers.
type failures struct {
	testing.TB
	msgs []string
}

func (f *failures) Helper()             {}
func (f *failures) Logf(string, ...any) {}
func (f *failures) Errorf(format string, args ...any) {
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}
func (f *failures) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	panic(f)
}

func (f *failures) check(recs []kinesis.TailRecord, want map[string][]int) {
	defer func() {
		if r := recover(); r != nil && r != f {
			panic(r)
		}
	}()
	checkStream(f, recs, want)
}

// The fault suite's check fails on a lost, reordered, extra or misrouted
// change, and accepts re-sent copies.
func TestCheckStreamCatchesLoss(t *testing.T) {
	write := func(id, val int) kinesis.TailRecord {
		return kinesis.TailRecord{PartitionKey: fmt.Sprintf("public.items:%d", id),
			Data: fmt.Appendf(nil, `{"table": "items", "columnvalues": [%d, %d]}`, id, val)}
	}
	del := kinesis.TailRecord{PartitionKey: "public.items:1", Data: []byte(`{"table": "items", "keyvalues": [1]}`)}
	want := map[string][]int{"items:1": {10, 11, -1}, "items:2": {20}}
	a, b, c, d := write(1, 10), write(1, 11), del, write(2, 20)
	misrouted := d
	misrouted.PartitionKey = "public.items:1"
	for _, tc := range []struct {
		name string
		recs []kinesis.TailRecord
		ok   bool
	}{
		{"every change once", []kinesis.TailRecord{a, d, b, c}, true},
		{"re-sent copies", []kinesis.TailRecord{a, b, a, d, c, b, d}, true},
		{"a change lost", []kinesis.TailRecord{a, c, d}, false},
		{"a delete lost", []kinesis.TailRecord{a, b, d}, false},
		{"a row's changes reordered", []kinesis.TailRecord{b, a, c, d}, false},
		{"a change never committed", []kinesis.TailRecord{a, b, c, d, write(3, 30)}, false},
		{"a change under another key", []kinesis.TailRecord{a, b, c, misrouted}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &failures{TB: t}
			f.check(tc.recs, want)
			if ok := len(f.msgs) == 0; ok != tc.ok {
				t.Fatalf("checkStream passed %t, want %t; it said %q", ok, tc.ok, f.msgs)
			}
		})
	}
}
