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

// Sink writes records, one per line.
type Sink struct {
	w *bufio.Writer
}

var _ sink.Sink = (*Sink)(nil)

// New returns a Sink writing to w.
func New(w io.Writer) *Sink {
	return &Sink{w: bufio.NewWriterSize(w, 64<<10)}
}

// Write writes r.Data and a newline, and flushes: once it returns, the
// record has reached w.
func (s *Sink) Write(_ context.Context, r sink.Record) error {
	s.w.Write(r.Data)
	s.w.WriteByte('\n')
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write record to stdout: %w", err)
	}
	return nil
}

// Close flushes what is buffered.
func (s *Sink) Close() error { return s.w.Flush() }
