package snapshot

import (
	"fmt"
	"math"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// Rows are a chunk's rows as Postgres printed them: every value in one
// buffer without pointers, shaped into an event only when the stream
// publishes the row, one event reused for all. A chunk of events (an
// Event and a Column per value, each full of pointers) is several times
// the size of its text, the collector scans all of it while the chunk
// waits for its high watermark, and shaping it up front held the worker's
// next read back; this way the worker only copies bytes, and the shaping
// runs on the stream's goroutine, beside the formatting it feeds.
type Rows struct {
	t     *Table
	width int // values a row: the printed columns, then the key's
	n     int // rows: a table may print no column
	data  []byte
	// ends are each value's end in data, a NULL's as -(end+1): a value
	// starts where the one before it ends.
	ends []int32
}

// maxRowsData bounds a chunk's text: ends are 32-bit.
const maxRowsData = math.MaxInt32

// newRows returns room for n rows of about size bytes of text in all
// (the chunk before's: the buffer then grows once, if at all).
func newRows(t *Table, n, size int) *Rows {
	return new(Rows).reuse(t, n, size)
}

// reuse makes r, the rows of a chunk the stream is done with, room for
// another chunk's, in the same buffers: a chunk's buffers are megabytes,
// which a new allocation zeroes and the collector then has to find
// again, chunk after chunk.
func (r *Rows) reuse(t *Table, n, size int) *Rows {
	w := len(t.cols) + len(t.key)
	r.t, r.width, r.n = t, w, 0
	r.data, r.ends = r.data[:0], r.ends[:0]
	if cap(r.ends) < n*w {
		r.ends = make([]int32, 0, n*w)
	}
	if cap(r.data) < size {
		r.data = make([]byte, 0, size)
	}
	return r
}

// Size is the bytes the rows hold: their text and 4 a value.
func (r *Rows) Size() int {
	if r == nil {
		return 0
	}
	return len(r.data) + 4*len(r.ends)
}

// Len is the number of rows.
func (r *Rows) Len() int {
	if r == nil {
		return 0
	}
	return r.n
}

// add appends a row of width values, nil for NULL, copying them.
func (r *Rows) add(vals [][]byte) error {
	for _, v := range vals {
		if len(r.data)+len(v) > maxRowsData {
			return fmt.Errorf("a chunk of over %d MiB of text: lower --snapshot-chunk-rows", maxRowsData>>20)
		}
		if v == nil {
			r.ends = append(r.ends, int32(-len(r.data)-1))
			continue
		}
		r.data = append(r.data, v...)
		r.ends = append(r.ends, int32(len(r.data)))
	}
	r.n++
	return nil
}

// row fills vals (width long) with row i's values, nil for NULL; they
// alias the buffer.
func (r *Rows) row(i int, vals [][]byte) {
	base := i * r.width
	from := int32(0)
	if base > 0 {
		from = end(r.ends[base-1])
	}
	for j := range vals {
		e := r.ends[base+j]
		if e < 0 {
			vals[j] = nil
			from = -e - 1
			continue
		}
		vals[j] = r.data[from:e:e]
		from = e
	}
}

func end(e int32) int32 {
	if e < 0 {
		return -e - 1
	}
	return e
}

// keyText is row i's key as Postgres prints it, by the table's key
// columns (the cursor a chunk ending with it reads on from).
func (r *Rows) keyText(i int) []string {
	vals := make([][]byte, r.width)
	r.row(i, vals)
	out := make([]string, len(r.t.key))
	for j := range out {
		out[j] = string(vals[len(r.t.cols)+j])
	}
	return out
}

// Each calls fn with each row's event, in order. The event, its columns
// and its values are reused for the next row: fn must copy what it keeps.
func (r *Rows) Each(fn func(ev *decode.Event) error) error {
	if r.Len() == 0 {
		return nil
	}
	s, err := r.t.newShaper()
	if err != nil {
		return err
	}
	var ev decode.Event
	cols := make([]decode.Column, len(r.t.cols))
	vals := make([][]byte, r.width)
	for i := range r.Len() {
		r.row(i, vals)
		ev = decode.Event{}
		if err := s.shape(&ev, cols, vals); err != nil {
			return fmt.Errorf("row %d of a chunk of %s: %w", i+1, r.t.name, err)
		}
		if err := fn(&ev); err != nil {
			return err
		}
	}
	return nil
}
