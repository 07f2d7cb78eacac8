// Package tcpproxy is a loopback TCP proxy for tests that cut the network
// between two programs: Cut drops every open connection (with a reset, as
// a broken path does) and refuses new ones until Restore; Blackhole keeps
// the connections open but silent, as a path that drops packets does.
package tcpproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Stats counts what the proxy did.
type Stats struct {
	Accepted int // connections accepted and forwarded
	Dropped  int // open connections closed by Cut
	Cuts     int
	Held     int // connections accepted during a blackhole, never forwarded
}

// Proxy forwards connections on 127.0.0.1:Port to a target address.
type Proxy struct {
	Host string
	Port int

	target string
	mu     sync.Mutex
	l      net.Listener // nil while cut
	conns  map[net.Conn]struct{}
	black  bool                      // new connections are held, not forwarded
	dead   map[net.Conn]*atomic.Bool // per connection: bytes are dropped for good
	stats  Stats
	wg     sync.WaitGroup
}

// Start runs a proxy to target ("host:port") until the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, target: target,
		conns: map[net.Conn]struct{}{}, dead: map[net.Conn]*atomic.Bool{}}
	p.serve(l)
	t.Cleanup(func() {
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's "host:port".
func (p *Proxy) Addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

// Stats returns a copy of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Cut closes the listening socket, so that new connections are refused,
// and resets every open connection on both sides. Cutting twice is
// harmless.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		_ = p.l.Close()
		p.l = nil
		p.stats.Cuts++
	}
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, not an orderly FIN
		}
		_ = c.Close()
		delete(p.conns, c)
		p.stats.Dropped++
	}
}

// Blackhole silences the network without closing anything: the open
// connections drop every byte from now on, in both directions, and new
// ones are accepted but never forwarded, as when a path loses every
// packet. The open connections stay dead after Restore: what they lost
// cannot be replayed.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.black = true
	for _, d := range p.dead {
		d.Store(true)
	}
}

// Restore ends a blackhole, or listens again on the same port after a
// Cut. It fails if another process took the port meanwhile.
func (p *Proxy) Restore() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.black = false
	if p.l != nil {
		return nil
	}
	var l net.Listener
	var err error
	// The closed socket may linger for a moment: retry briefly.
	for i := 0; i < 50; i++ {
		if l, err = net.Listen("tcp", p.Addr()); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("tcpproxy: listen again on %s: %w", p.Addr(), err)
	}
	p.serve(l)
	return nil
}

// serve accepts on l until it is closed; called with p.mu held or before
// the proxy is shared.
func (p *Proxy) serve(l net.Listener) {
	p.l = l
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					time.Sleep(10 * time.Millisecond) // a transient accept error
					continue
				}
				return
			}
			p.forward(l, c)
		}
	}()
}

// forward connects c to the target, unless the proxy was cut meanwhile;
// during a blackhole it holds c open and silent.
func (p *Proxy) forward(l net.Listener, c net.Conn) {
	p.mu.Lock()
	if p.black {
		p.conns[c] = struct{}{}
		p.stats.Held++
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.l != l { // cut after the accept: behave as if never connected
		p.mu.Unlock()
		_ = c.Close()
		_ = up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	dead := &atomic.Bool{}
	dead.Store(p.black) // a blackhole that began while dialing
	p.dead[c] = dead
	p.stats.Accepted++
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		defer p.wg.Done()
		_, _ = io.Copy(dst, dropper{src, dead})
		if dead.Load() {
			// In a blackhole, one side's close never reaches the other:
			// leave both open until Cut or the end of the test.
			return
		}
		// One direction ended: end both, as a real connection would.
		p.mu.Lock()
		delete(p.conns, c)
		delete(p.conns, up)
		delete(p.dead, c)
		p.mu.Unlock()
		_ = c.Close()
		_ = up.Close()
	}
	p.wg.Add(2)
	go pipe(up, c)
	go pipe(c, up)
}

// dropper reads from r, and drops what it read once dead is set.
type dropper struct {
	r    io.Reader
	dead *atomic.Bool
}

func (d dropper) Read(p []byte) (int, error) {
	for {
		n, err := d.r.Read(p)
		if err != nil || !d.dead.Load() {
			return n, err
		}
	}
}
