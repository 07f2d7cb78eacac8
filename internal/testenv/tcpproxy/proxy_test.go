package tcpproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// echo serves one line-echo server on loopback until the test ends.
func echo(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return l.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn) error {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err == nil && line != "ping\n" {
		t.Fatalf("echo %q", line)
	}
	return err
}

// Forwards; Cut resets open connections and refuses new ones; Restore
// accepts again on the same port.
func TestCutAndRestore(t *testing.T) {
	p := Start(t, echo(t))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(t, c); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.Cut()
	if err := roundTrip(t, c); err == nil {
		t.Fatal("an open connection still works after Cut")
	}
	if c2, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c2.Close()
		t.Fatal("a new connection was accepted after Cut")
	}
	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("dial after Restore: %v", err)
	}
	defer c3.Close()
	if err := roundTrip(t, c3); err != nil {
		t.Fatalf("after Restore: %v", err)
	}
	if s := p.Stats(); s.Accepted != 2 || s.Cuts != 1 || s.Dropped != 2 {
		t.Fatalf("stats %+v, want 2 accepted, 1 cut, 2 dropped (both ends of one connection)", s)
	}
}

// silent reports whether a line sent on c gets no answer within 300ms and
// the connection stays open.
func silent(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	_, err := bufio.NewReader(c).ReadString('\n')
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestBlackholeAndRestore(t *testing.T) {
	p := Start(t, echo(t))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(t, c); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.Blackhole()
	if !silent(t, c) {
		t.Fatal("an open connection is not silent in a blackhole")
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("dial in a blackhole: %v (want it accepted, then silent)", err)
	}
	defer c2.Close()
	if !silent(t, c2) {
		t.Fatal("a new connection is not silent in a blackhole")
	}
	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	if !silent(t, c) {
		t.Fatal("a connection from before the blackhole works again after Restore")
	}
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if err := roundTrip(t, c3); err != nil {
		t.Fatalf("a new connection after Restore: %v", err)
	}
	if s := p.Stats(); s.Accepted != 2 || s.Held != 1 {
		t.Fatalf("stats %+v, want 2 accepted and 1 held", s)
	}
}
