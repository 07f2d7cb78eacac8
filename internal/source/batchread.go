package source

import (
	"errors"
	"net"
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
	sys syscall.RawConn // nil once SO_RCVLOWAT failed: reads as they come

	busy bool      // SO_RCVLOWAT is readBatch; else 1, the default
	last time.Time // when a read last returned data

	mu       sync.Mutex // deadlines are set from other goroutines too (cancellation)
	deadline time.Time  // the caller's
	armed    time.Time  // the one set on the connection
}

func newBatchedConn(c *net.TCPConn) net.Conn {
	sys, err := c.SyscallConn()
	if err != nil {
		return c
	}
	return &batchedConn{Conn: c, sys: sys}
}

func (c *batchedConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline, c.armed = t, t
	return c.Conn.SetDeadline(t)
}

func (c *batchedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline, c.armed = t, t
	return c.Conn.SetReadDeadline(t)
}

func (c *batchedConn) Read(p []byte) (int, error) {
	for {
		if err := c.arm(); err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(p)
		if n > 0 || !c.busy || !isTimeout(err) || c.expired() {
			c.note(n)
			return n, err
		}
		// Less than a batch within readBatchWait: read what there is,
		// and wait for the next byte as usual.
		c.setBusy(false)
	}
}

// arm sets the read deadline: the caller's, or sooner while busy.
func (c *batchedConn) arm() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.deadline
	if c.busy {
		if soon := time.Now().Add(readBatchWait); t.IsZero() || soon.Before(t) {
			t = soon
		}
	}
	if t.Equal(c.armed) {
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
	if !c.busy && now.Sub(c.last) < readBatchWait {
		c.setBusy(true)
	}
	c.last = now
}

func (c *batchedConn) setBusy(busy bool) {
	if c.sys == nil {
		return
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
		c.sys, c.busy = nil, false // best effort: reads as they come, only more costly
		return
	}
	c.busy = busy
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
