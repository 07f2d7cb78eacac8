// Package spool holds the messages of streamed, still uncommitted
// transactions on disk until they commit or abort, so that a transaction
// of any size costs a constant amount of memory and an aborted one
// publishes nothing.
//
// Each transaction gets its own file, unlinked as soon as it is created:
// a crash leaves nothing behind, and the server streams the transaction
// again after a restart anyway.
package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/jackc/pglogrepl"
)

// Spool holds streamed transactions by top-level xid. Not safe for
// concurrent use. The zero value is not ready: use New.
type Spool struct {
	dir  string
	txns map[uint32]*txn
}

type txn struct {
	f    *os.File
	w    *bufio.Writer
	size int64 // bytes written, buffered ones included
	n    int   // messages held
	subs []sub // subtransactions in order of their first message
}

// sub is where a subtransaction's first message starts, and how many
// messages come before it: aborting it cuts the file there.
type sub struct {
	xid uint32
	off int64
	n   int
}

const headerSize = 8 + 4 // LSN, length

// New returns a Spool that keeps its files in dir ("" is os.TempDir()).
func New(dir string) *Spool { return &Spool{dir: dir, txns: map[uint32]*txn{}} }

// Len is the number of messages held for xid.
func (s *Spool) Len(xid uint32) int {
	if t := s.txns[xid]; t != nil {
		return t.n
	}
	return 0
}

// Append holds data, a message of subtransaction subxid (xid itself for
// the top-level transaction) of transaction xid at WAL position lsn.
// data is copied.
func (s *Spool) Append(xid, subxid uint32, lsn pglogrepl.LSN, data []byte) error {
	t, err := s.open(xid)
	if err != nil {
		return err
	}
	if subxid != xid && !t.hasSub(subxid) {
		t.subs = append(t.subs, sub{xid: subxid, off: t.size, n: t.n})
	}
	var hdr [headerSize]byte
	binary.BigEndian.PutUint64(hdr[:8], uint64(lsn))
	binary.BigEndian.PutUint32(hdr[8:], uint32(len(data)))
	if _, err := t.w.Write(hdr[:]); err != nil {
		return fmt.Errorf("spool transaction %d: %w", xid, err)
	}
	if _, err := t.w.Write(data); err != nil {
		return fmt.Errorf("spool transaction %d: %w", xid, err)
	}
	t.size += int64(headerSize + len(data))
	t.n++
	return nil
}

// hasSub looks from the latest subtransaction back: a run of changes
// nearly always belongs to the latest.
func (t *txn) hasSub(xid uint32) bool {
	for i := len(t.subs) - 1; i >= 0; i-- {
		if t.subs[i].xid == xid {
			return true
		}
	}
	return false
}

func (s *Spool) open(xid uint32) (*txn, error) {
	if t := s.txns[xid]; t != nil {
		return t, nil
	}
	f, err := os.CreateTemp(s.dir, "pg2kinesis-txn-*.spool")
	if err != nil {
		return nil, fmt.Errorf("spool streamed transaction %d: %w (point --spool-dir at a writable directory with room)", xid, err)
	}
	if err := os.Remove(f.Name()); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("spool streamed transaction %d: unlink %s: %w", xid, f.Name(), err)
	}
	t := &txn{f: f, w: bufio.NewWriterSize(f, 64<<10)}
	s.txns[xid] = t
	return t, nil
}

// Abort drops what is held of subtransaction subxid of xid and of every
// subtransaction that started after it, as the server aborts those
// together; subxid == xid drops the whole transaction.
func (s *Spool) Abort(xid, subxid uint32) error {
	t := s.txns[xid]
	if t == nil {
		return nil
	}
	if subxid == xid {
		return s.Discard(xid)
	}
	for i, sb := range t.subs {
		if sb.xid != subxid {
			continue
		}
		if err := t.w.Flush(); err != nil {
			return fmt.Errorf("spool transaction %d: %w", xid, err)
		}
		if err := t.f.Truncate(sb.off); err != nil {
			return fmt.Errorf("spool transaction %d: drop aborted subtransaction %d: %w", xid, subxid, err)
		}
		if _, err := t.f.Seek(sb.off, io.SeekStart); err != nil {
			return fmt.Errorf("spool transaction %d: %w", xid, err)
		}
		t.size, t.n, t.subs = sb.off, sb.n, t.subs[:i]
		return nil
	}
	return nil // nothing held of it
}

// Discard drops everything held for xid.
func (s *Spool) Discard(xid uint32) error {
	t := s.txns[xid]
	if t == nil {
		return nil
	}
	delete(s.txns, xid)
	return t.f.Close()
}

// Replay calls fn with every message held for xid, in the order they were
// appended, then drops them. data is valid only during the call. An error
// from fn stops the replay and is returned; the messages are dropped
// either way, since the server sends the transaction again after the
// failure that such an error leads to.
func (s *Spool) Replay(xid uint32, fn func(lsn pglogrepl.LSN, data []byte) error) (err error) {
	t := s.txns[xid]
	if t == nil {
		return nil
	}
	defer func() {
		// A file that cannot be closed is still unlinked: only its
		// descriptor is lost, and the replay's own error matters more.
		if dErr := s.Discard(xid); dErr != nil && err == nil {
			err = dErr
		}
	}()
	if err := t.w.Flush(); err != nil {
		return fmt.Errorf("spool transaction %d: %w", xid, err)
	}
	r := bufio.NewReaderSize(io.NewSectionReader(t.f, 0, t.size), 64<<10)
	var hdr [headerSize]byte
	var buf []byte
	for range t.n {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return fmt.Errorf("read spooled transaction %d: %w", xid, err)
		}
		n := int(binary.BigEndian.Uint32(hdr[8:]))
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("read spooled transaction %d: %w", xid, err)
		}
		if err := fn(pglogrepl.LSN(binary.BigEndian.Uint64(hdr[:8])), buf); err != nil {
			return err
		}
	}
	return nil
}

// Close drops every transaction held.
func (s *Spool) Close() error {
	var errs []error
	for xid := range s.txns {
		errs = append(errs, s.Discard(xid))
	}
	return errors.Join(errs...)
}
