//go:build linux

package source

import (
	"bytes"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// tcpPair is a loopback connection: the reader batched, and its peer.
func tcpPair(t *testing.T) (*batchedConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	bc, ok := newBatchedConn(c.(*net.TCPConn)).(*batchedConn)
	if !ok {
		t.Fatal("newBatchedConn did not batch a TCP connection")
	}
	t.Cleanup(func() { bc.Close(); peer.Close() })
	return bc, peer
}

func rcvLowat(t *testing.T, c *batchedConn) int {
	t.Helper()
	var v int
	var err error
	if cerr := c.sys.Control(func(fd uintptr) { v, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT) }); cerr != nil || err != nil {
		t.Fatal(cerr, err)
	}
	return v
}

// A busy stream's reads wait for a batch, yet its last bytes, fewer than a
// batch, are still read (after readBatchWait, long before the deadline):
// batching must never hold data back until the caller's deadline.
func TestBatchedConnReadsTheTail(t *testing.T) {
	c, peer := tcpPair(t)
	msg := bytes.Repeat([]byte("x"), 100)
	const msgs = 50
	buf := make([]byte, 8192)
	var got int
	if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for i := range msgs {
		if _, err := peer.Write(msg); err != nil {
			t.Fatal(err)
		}
		// Read every message as it comes, until batching is on.
		for got < (i+1)*len(msg) {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("read after %d of %d bytes: %v", got, msgs*len(msg), err)
			}
			got += n
		}
	}
	if !c.busy || rcvLowat(t, c) != readBatch {
		t.Fatalf("after %d back-to-back messages: busy=%v SO_RCVLOWAT=%d, want batching on (%d)", msgs, c.busy, rcvLowat(t, c), readBatch)
	}
	// Fewer than readBatch bytes, sent while the read waits: read all the
	// same, long before the caller's deadline.
	time.AfterFunc(5*time.Millisecond, func() { _, _ = peer.Write(msg) })
	n, err := io.ReadFull(c, buf[:len(msg)])
	if err != nil || n != len(msg) {
		t.Fatalf("the last message: read %d bytes, %v", n, err)
	}
	// Then a quiet stream turns batching off.
	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(buf); n != 0 || !isTimeout(err) {
		t.Fatalf("read of a quiet stream: %d bytes, %v; want a timeout", n, err)
	}
	if c.busy || rcvLowat(t, c) != 1 {
		t.Fatalf("after a quiet spell: busy=%v SO_RCVLOWAT=%d, want batching off", c.busy, rcvLowat(t, c))
	}
}

// The caller's deadline, set before a read or from another goroutine
// during it (how a stop interrupts a read), ends a batched read with a
// timeout, as on a plain connection.
func TestBatchedConnDeadlines(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cross bool // set during the read, from another goroutine
	}{{"before the read", false}, {"during the read", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c, peer := tcpPair(t)
			c.setBusy(true)
			if _, err := peer.Write([]byte("a")); err != nil { // fewer than a batch
				t.Fatal(err)
			}
			buf := make([]byte, 16)
			if n, err := c.Read(buf); n != 1 || err != nil {
				t.Fatalf("read %d bytes, %v; want the 1 byte sent", n, err)
			}
			c.setBusy(true)
			if tc.cross {
				if err := c.SetReadDeadline(time.Time{}); err != nil {
					t.Fatal(err)
				}
				time.AfterFunc(20*time.Millisecond, func() { _ = c.SetReadDeadline(time.Now()) })
			} else if err := c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			n, err := c.Read(buf)
			if n != 0 || !isTimeout(err) {
				t.Fatalf("read past the deadline: %d bytes, %v; want a timeout", n, err)
			}
			// A later deadline lets reads go on.
			if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if _, err := peer.Write([]byte("b")); err != nil {
				t.Fatal(err)
			}
			if n, err := c.Read(buf); n != 1 || err != nil || buf[0] != 'b' {
				t.Fatalf("read after the deadline moved: %d bytes %q, %v", n, buf[:n], err)
			}
		})
	}
}

// A deadline set while batching keeps the readBatchWait cap on the
// connection: set from another goroutine during a read (a later deadline
// than the cap), it must not let the read wait for a full batch.
func TestBatchedConnLaterDeadlineKeepsTheCap(t *testing.T) {
	c, _ := tcpPair(t)
	c.setBusy(true)
	for _, set := range []func(time.Time) error{c.SetReadDeadline, c.SetDeadline} {
		for _, d := range []time.Time{time.Now().Add(30 * time.Second), {}} {
			if err := set(d); err != nil {
				t.Fatal(err)
			}
			c.mu.Lock()
			armed := c.armed
			c.mu.Unlock()
			if armed.IsZero() || armed.After(time.Now().Add(readBatchWait)) {
				t.Fatalf("caller's deadline %v while batching: the connection's is %v, want at most %v away", d, armed, readBatchWait)
			}
		}
	}
}

// While batching, a read with less than a read's worth queued waits for
// more, up to the cap, and then takes what there is; with enough queued,
// it reads at once. (The cap is longer here, so that "at once" can be
// told from "after the cap" on a slow machine.)
func TestBatchedConnWaitsForABatch(t *testing.T) {
	c, peer := tcpPair(t)
	c.wait = 200 * time.Millisecond
	if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := c.setBusy(true); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"a", "b"} {
		if _, err := peer.Write(bytes.Repeat([]byte(b), 100)); err != nil {
			t.Fatal(err)
		}
	}
	waitQueued(t, c, 200)
	buf := make([]byte, 8192)
	start := time.Now()
	n, err := c.Read(buf)
	if waited := time.Since(start); err != nil || waited < c.wait {
		t.Fatalf("read %d bytes after %s, %v: want a wait of %s for more", n, waited, err, c.wait)
	}
	if n != 200 {
		t.Fatalf("read %d bytes %q…, want both writes (200 bytes)", n, buf[:min(n, 8)])
	}
	if !c.busy {
		t.Fatal("batching turned off although data came")
	}
	// A read's worth queued: read at once, not after the cap.
	if _, err := peer.Write(bytes.Repeat([]byte("c"), 10000)); err != nil {
		t.Fatal(err)
	}
	waitQueued(t, c, 4096)
	start = time.Now()
	n, err = c.Read(buf[:4096])
	if waited := time.Since(start); n != 4096 || err != nil || waited >= c.wait/2 {
		t.Fatalf("read %d bytes after %s, %v; want the 4096 asked for at once", n, waited, err)
	}
}

// waitQueued waits until c's socket has at least n bytes queued.
func waitQueued(t *testing.T, c *batchedConn, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for q := 0; q < n; time.Sleep(time.Millisecond) {
		if err := c.sys.Control(func(fd uintptr) { q = queued(fd) }); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d bytes queued after 10 s", q, n)
		}
	}
}

// A deadline that has passed ends a batched read with a timeout even
// when data is queued, as on a plain connection: a stop sets one to
// interrupt a stream that never pauses.
func TestBatchedConnPastDeadlineWinsOverData(t *testing.T) {
	c, peer := tcpPair(t)
	c.setBusy(true)
	if _, err := peer.Write([]byte("queued")); err != nil {
		t.Fatal(err)
	}
	waitQueued(t, c, len("queued"))
	if err := c.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8192)
	if n, err := c.Read(buf); n != 0 || !isTimeout(err) {
		t.Fatalf("read past the deadline: %d bytes, %v; want a timeout", n, err)
	}
}

// Once SO_RCVLOWAT could not be lowered (sys gone while busy), reads are
// plain reads, still capped by readBatchWait through the deadline.
func TestBatchedConnWithoutLowat(t *testing.T) {
	c, peer := tcpPair(t)
	c.setBusy(true)
	c.mu.Lock()
	c.sys = nil
	c.mu.Unlock()
	if _, err := peer.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := c.Read(buf); n != 1 || err != nil {
		t.Fatalf("read %d bytes, %v; want the byte sent", n, err)
	}
}
