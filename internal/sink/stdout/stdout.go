// Package stdout is a debugging sink that writes each record on its own
// line to a writer, usually the process' standard output.
package stdout

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
)

// Sink writes records, one per line, through a buffer that it writes out
// when full, when the records stop coming for a moment (idle), and at
// least every flush interval. A record is acknowledged once it has been
// written through to w, never while it sits in the buffer.
//
// Why buffered: one write per record costs a system call per change,
// more than the rest of pg2kinesis spends on it. Why the pause: without
// it the last records of a burst (a snapshot's last chunk, a large
// transaction) would wait for the interval, and so would their
// acknowledgement and the slot.
type Sink struct {
	every time.Duration
	ack   sink.AckFunc
	wake  chan struct{} // Put tells Run that the buffer holds records

	mu      sync.Mutex
	w       *bufio.Writer
	pending []uint64 // records in the buffer, in order
	puts    uint64   // Puts so far: Run tells a pause by it
}

// idle is the pause in Puts after which the buffer is written out.
const idle = 2 * time.Millisecond

var _ sink.Sink = (*Sink)(nil)

// New returns a Sink writing to w that acknowledges through ack and writes
// its buffer out at least every flushEvery (at most 64 KiB wait longer).
func New(w io.Writer, flushEvery time.Duration, ack sink.AckFunc) *Sink {
	return &Sink{w: bufio.NewWriterSize(w, 64<<10), every: flushEvery, ack: ack, wake: make(chan struct{}, 1)}
}

// Put buffers r.Data and a newline, writing the buffer out first if r does
// not fit.
func (s *Sink) Put(_ context.Context, r sink.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(r.Data)+1 > s.w.Available() && s.w.Buffered() > 0 {
		if err := s.flush(); err != nil {
			return err
		}
	}
	// A record larger than the buffer goes straight through, its newline
	// stays buffered: it is acknowledged at the next flush, like the
	// others. An error sticks in the writer, and that flush returns it.
	s.w.Write(r.Data)
	s.w.WriteByte('\n')
	s.pending = append(s.pending, r.Seq)
	s.puts++
	if len(s.pending) == 1 {
		select {
		case s.wake <- struct{}{}:
		default: // Run has been told already
		}
	}
	return nil
}

// Run writes the buffer out, once records are in it, when Puts pause for
// idle or the flush interval has passed, until ctx ends.
func (s *Sink) Run(ctx context.Context) error {
	t := time.NewTimer(idle)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		}
		deadline := time.Now().Add(s.every)
		last := s.count()
		for {
			t.Reset(min(idle, max(time.Until(deadline), 0)))
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			n := s.count()
			if n != last && time.Now().Before(deadline) {
				last = n // still coming
				continue
			}
			s.mu.Lock()
			err := s.flush()
			s.mu.Unlock()
			if err != nil {
				return err
			}
			break
		}
	}
}

func (s *Sink) count() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts
}

// Drain writes the buffer out.
func (s *Sink) Drain(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flush()
}

// Close writes the buffer out.
func (s *Sink) Close() error { return s.Drain(context.Background()) }

// flush writes the buffer through and acknowledges what it held; called
// with s.mu held.
func (s *Sink) flush() error {
	if len(s.pending) == 0 {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write records to stdout: %w", err)
	}
	s.ack(s.pending)
	s.pending = s.pending[:0]
	return nil
}
