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

// connected dials p and checks a line goes through; the connection is
// closed when the test ends.
func connected(t *testing.T, p *Proxy, when string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("dial %s: %v", when, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := roundTrip(t, c); err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	return c
}

// Forwards; Cut resets open connections and refuses new ones; Restore
// accepts again on the same port.
func TestCutAndRestore(t *testing.T) {
	p := Start(t, echo(t))
	c := connected(t, p, "through the proxy")
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
	connected(t, p, "after Restore")
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
	c := connected(t, p, "through the proxy")
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
	connected(t, p, "a new connection after Restore")
	if s := p.Stats(); s.Accepted != 2 || s.Held != 1 {
		t.Fatalf("stats %+v, want 2 accepted and 1 held", s)
	}
}
