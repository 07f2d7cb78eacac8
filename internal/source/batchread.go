package source

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Read batching: while the stream is busy, the replication socket wakes
// its reader only once readBatch bytes have arrived (SO_RCVLOWAT), or
// readBatchWait after it began to wait, whichever comes first.
//
// Why: the walsender sends every message in a segment of its own. A reader
// that keeps up wakes for each one: a poll, a read, a read that finds
// nothing, for every change. On a backlog that costs more CPU than the
// rest of pg2kinesis together (about 3 of 5 µs per row), and on a machine
// whose cores it shares with the walsender, it slows the walsender down.
// Waking once per batch instead reads the same bytes in a few large reads.
//
// The price is latency: while busy, a change waits at most readBatchWait
// before it is read. A quiet stream (data less often than every
// readBatchWait) is read as it arrives.
const (
	readBatch     = 64 << 10
	readBatchWait = time.Millisecond
)

// batchedConn is a TCP connection whose reads batch as above. It keeps
// the caller's read deadline: a read that reaches it times out as usual.
type batchedConn struct {
	net.Conn
	sys  syscall.RawConn // nil once SO_RCVLOWAT failed: no more changes to it
	wait time.Duration   // readBatchWait (tests make it longer)
	last time.Time       // when a read last returned data

	// Deadlines are set from other goroutines too (cancellation), and
	// each one set while busy must keep the readBatchWait cap.
	mu       sync.Mutex
	busy     bool      // SO_RCVLOWAT is readBatch: reads wait readBatchWait at most
	deadline time.Time // the caller's
	armed    time.Time // the one set on the connection
}

func newBatchedConn(c *net.TCPConn) net.Conn {
	sys, err := c.SyscallConn()
	if err != nil {
		return c
	}
	return &batchedConn{Conn: c, sys: sys, wait: readBatchWait}
}

func (c *batchedConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	c.deadline = t
	return c.armLocked(true)
}

func (c *batchedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return c.armLocked(true)
}

func (c *batchedConn) Read(p []byte) (int, error) {
	for {
		if err := c.arm(); err != nil {
			return 0, err
		}
		var n int
		var err error
		if c.batching() {
			n, err = c.readBatched(p)
		} else {
			n, err = c.Conn.Read(p)
		}
		if n > 0 || !isTimeout(err) || c.expired() {
			c.note(n)
			return n, err
		}
		// The cap, not the caller's deadline: nothing came within
		// readBatchWait. Wait for the next byte as usual.
		if err := c.setBusy(false); err != nil {
			return 0, err
		}
	}
}

// readBatched waits, unless a read's worth is queued already, until a
// batch has arrived (SO_RCVLOWAT wakes the poller only then) or the
// connection's deadline (at most readBatchWait away) has passed, and then
// reads what there is.
//
// Why not Conn.Read: it reads before it waits, and a read returns
// whatever is queued, however little; a reader that keeps up would then
// read each message as it comes, batching or not.
func (c *batchedConn) readBatched(p []byte) (int, error) {
	var n int
	var rerr error
	waited := false
	err := c.sys.Read(func(fd uintptr) bool {
		if !waited {
			waited = true
			if queued(fd) < min(len(p), readBatch) {
				return false
			}
		}
		n, rerr = readFD(fd, p)
		return rerr != syscall.EAGAIN
	})
	if isTimeout(err) && !c.expired() {
		// The cap ended the wait: read what came meanwhile, fewer than a
		// batch. (The caller's deadline ends the read, data or not, as on
		// a plain connection: it is how a stop interrupts a busy stream.)
		if cerr := c.sys.Control(func(fd uintptr) { n, rerr = readFD(fd, p) }); cerr != nil {
			return 0, cerr
		}
		if rerr == syscall.EAGAIN {
			return 0, err
		}
	} else if err != nil {
		return 0, err
	}
	switch {
	case rerr != nil:
		return n, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// batching reports whether reads wait for a batch: busy, with
// SO_RCVLOWAT raised.
func (c *batchedConn) batching() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.busy && c.sys != nil
}

// arm sets the read deadline: the caller's, or sooner while busy.
func (c *batchedConn) arm() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.armLocked(false)
}

// armLocked sets the connection's read deadline, if it changed or force
// is set, to the caller's or, while busy, at most readBatchWait away.
// Called with c.mu held.
func (c *batchedConn) armLocked(force bool) error {
	t := c.deadline
	if c.busy {
		if soon := time.Now().Add(c.wait); t.IsZero() || soon.Before(t) {
			t = soon
		}
	}
	if !force && t.Equal(c.armed) {
		return nil
	}
	c.armed = t
	return c.Conn.SetReadDeadline(t)
}

// expired reports whether the caller's deadline has passed.
func (c *batchedConn) expired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.deadline.IsZero() && !time.Now().Before(c.deadline)
}

// note turns batching on when data comes again within readBatchWait.
func (c *batchedConn) note(n int) {
	if n == 0 {
		return
	}
	now := time.Now()
	if now.Sub(c.last) < c.wait {
		_ = c.setBusy(true) // if it fails, reads are not batched: slower, no worse
	}
	c.last = now
}

// setBusy raises or lowers SO_RCVLOWAT. If raising it fails, batching
// stays off for good. If lowering it fails, the error is returned: a
// socket left waiting for a batch would hold a quiet stream's changes
// back, or wake its reader every readBatchWait for good, so the
// connection is given up (Run reconnects on a new socket).
func (c *batchedConn) setBusy(busy bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sys == nil || c.busy == busy {
		return nil
	}
	lowat := 1
	if busy {
		lowat = readBatch
	}
	var err error
	if cerr := c.sys.Control(func(fd uintptr) { err = setRcvLowat(fd, lowat) }); cerr != nil {
		err = cerr
	}
	if err != nil {
		c.sys = nil
		if !busy {
			return fmt.Errorf("lower SO_RCVLOWAT of the replication socket: %w", err)
		}
		return nil
	}
	c.busy = busy
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
