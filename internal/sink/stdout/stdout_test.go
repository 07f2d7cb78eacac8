package stdout

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
)

func TestWritesOneLinePerRecord(t *testing.T) {
	var buf bytes.Buffer
	s := New(&buf)
	for _, d := range []string{"BEGIN 1", `{"action":"I"}`, "COMMIT 1"} {
		if err := s.Write(t.Context(), sink.Record{Data: []byte(d)}); err != nil {
			t.Fatal(err)
		}
		// Delivered means written through, not buffered.
		if !strings.HasSuffix(buf.String(), d+"\n") {
			t.Fatalf("after Write(%q) the writer holds %q", d, buf.String())
		}
	}
	if got, want := buf.String(), "BEGIN 1\n{\"action\":\"I\"}\nCOMMIT 1\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorIsReturned(t *testing.T) {
	s := New(failingWriter{})
	err := s.Write(t.Context(), sink.Record{Data: []byte("x")})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Write = %v, want the writer's error", err)
	}
}
