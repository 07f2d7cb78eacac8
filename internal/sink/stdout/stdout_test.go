package stdout

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
)

func TestWritesOneLinePerRecordAndAcks(t *testing.T) {
	var buf bytes.Buffer
	var acked []uint64
	s := New(&buf, func(seq uint64) { acked = append(acked, seq) })
	for i, d := range []string{"0,CDC,1,public.a,INSERT,1", `0,CDC,{"xid": 1}`} {
		if err := s.Put(t.Context(), sink.Record{Data: []byte(d), Seq: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
		// Acknowledged means written through, not buffered.
		if !strings.HasSuffix(buf.String(), d+"\n") || len(acked) != i+1 {
			t.Fatalf("after Put(%q): writer %q, acked %v", d, buf.String(), acked)
		}
	}
	if acked[0] != 1 || acked[1] != 2 {
		t.Fatalf("acked %v", acked)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorIsReturnedNotAcked(t *testing.T) {
	acked := 0
	s := New(failingWriter{}, func(uint64) { acked++ })
	err := s.Put(t.Context(), sink.Record{Data: []byte("x"), Seq: 1})
	if err == nil || !strings.Contains(err.Error(), "disk full") || acked != 0 {
		t.Fatalf("Put = %v, acked %d; want the writer's error and no ack", err, acked)
	}
}
