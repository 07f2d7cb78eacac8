// Package stdout is a debugging sink that writes each record on its own
// line to a writer, usually the process' standard output.
package stdout

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
)

// Sink writes records, one per line. It is synchronous: a record is
// acknowledged as soon as it has been written through to w.
type Sink struct {
	w   *bufio.Writer
	ack sink.AckFunc
}

var _ sink.Sink = (*Sink)(nil)

// New returns a Sink writing to w that acknowledges through ack.
func New(w io.Writer, ack sink.AckFunc) *Sink {
	return &Sink{w: bufio.NewWriterSize(w, 64<<10), ack: ack}
}

// Put writes r.Data and a newline, flushes, and acknowledges r.
func (s *Sink) Put(_ context.Context, r sink.Record) error {
	s.w.Write(r.Data)
	s.w.WriteByte('\n')
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write record to stdout: %w", err)
	}
	s.ack(r.Seq)
	return nil
}

// Run has nothing to do in the background.
func (s *Sink) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Drain has nothing to wait for: every Put is delivered when it returns.
func (s *Sink) Drain(context.Context) error { return nil }

// Close flushes what is buffered.
func (s *Sink) Close() error { return s.w.Flush() }
