package stdout

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// acks collects acknowledgements from the sink's goroutines.
type acks struct {
	mu  sync.Mutex
	seq []uint64
}

func (a *acks) ack(seqs []uint64) { a.mu.Lock(); a.seq = append(a.seq, seqs...); a.mu.Unlock() }

func (a *acks) get() []uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]uint64(nil), a.seq...)
}

// Records are written one per line, and acknowledged only once written
// through: at the flush interval, at Drain, or when the buffer fills.
func TestAcknowledgesWhatIsWrittenThrough(t *testing.T) {
	var out testenv.LogBuffer // safe to read while the sink writes
	var a acks
	s := New(&out, 20*time.Millisecond, a.ack)
	lines := []string{"0,CDC,1,public.a,INSERT,1", `0,CDC,{"xid": 1}`}
	for i, d := range lines {
		if err := s.Put(t.Context(), sink.Record{Data: []byte(d), Seq: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.get(); len(got) != 0 || out.String() != "" {
		t.Fatalf("before any flush: acked %v, wrote %q; want nothing yet", got, out.String())
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(a.get()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), strings.Join(lines, "\n")+"\n"; got != want {
		t.Fatalf("wrote %q, want %q", got, want)
	}
	if got := a.get(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("acked %v after the interval, want [1 2]", got)
	}

	if err := s.Put(t.Context(), sink.Record{Data: []byte("three"), Seq: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.Drain(t.Context()); err != nil || len(a.get()) != 3 || !strings.HasSuffix(out.String(), "three\n") {
		t.Fatalf("Drain = %v, acked %v; want the third record written and acknowledged", err, a.get())
	}

	// A record that does not fit writes out the buffer first; one larger
	// than the buffer goes straight through.
	big := bytes.Repeat([]byte("x"), 100<<10)
	for i, d := range [][]byte{[]byte("four"), big} {
		if err := s.Put(t.Context(), sink.Record{Data: d, Seq: uint64(4 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.get(); len(got) != 4 || got[3] != 4 {
		t.Fatalf("acked %v, want the fourth written out when the large one came, the large one not yet (its newline waits)", got)
	}
	if err := s.Close(); err != nil || len(a.get()) != 5 || !strings.HasSuffix(out.String(), "four\n"+string(big)+"\n") {
		t.Fatalf("Close = %v, acked %d", err, len(a.get()))
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorIsReturnedNotAcked(t *testing.T) {
	var a acks
	s := New(failingWriter{}, time.Hour, a.ack)
	if err := s.Put(t.Context(), sink.Record{Data: []byte("x"), Seq: 1}); err != nil {
		t.Fatalf("Put buffers and cannot fail yet: %v", err)
	}
	err := s.Drain(t.Context())
	if err == nil || !strings.Contains(err.Error(), "disk full") || len(a.get()) != 0 {
		t.Fatalf("Drain = %v, acked %v; want the writer's error and no ack", err, a.get())
	}
}

// running runs s until the test ends.
func running(t *testing.T, s *Sink) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// The buffer is written out once Puts pause, long before the interval:
// the last records of a burst are not held for it.
func TestWritesOutWhenPutsPause(t *testing.T) {
	var out testenv.LogBuffer
	var a acks
	s := New(&out, time.Hour, a.ack)
	running(t, s)
	for round := uint64(1); round <= 2; round++ {
		if err := s.Put(t.Context(), sink.Record{Data: []byte("x"), Seq: round}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for uint64(len(a.get())) < round && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := a.get(); uint64(len(got)) != round || got[round-1] != round {
			t.Fatalf("round %d: acked %v; want the record written out after the pause, not after the hour's interval", round, got)
		}
	}
}

// Records that keep coming are still written out every interval.
func TestWritesOutEveryIntervalWhilePutsGoOn(t *testing.T) {
	var out testenv.LogBuffer
	var a acks
	s := New(&out, 20*time.Millisecond, a.ack)
	running(t, s)
	// Well before the 64 KiB buffer fills (3 s of these records): the
	// interval (or a pause the scheduler makes) writes them out.
	deadline := time.Now().Add(time.Second)
	for seq := uint64(1); len(a.get()) == 0; seq++ {
		if time.Now().After(deadline) {
			t.Fatal("nothing written out in 1 s of Puts every 100 µs, with a 20 ms interval")
		}
		if err := s.Put(t.Context(), sink.Record{Data: []byte("x"), Seq: seq}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Microsecond)
	}
}
