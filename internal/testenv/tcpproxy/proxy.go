// Package tcpproxy is a loopback TCP proxy for tests that cut the network
// between two programs: Cut drops every open connection (with a reset, as
// a broken path does) and refuses new ones until Restore.
package tcpproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Stats counts what the proxy did.
type Stats struct {
	Accepted int // connections accepted and forwarded
	Dropped  int // open connections closed by Cut
	Cuts     int
}

// Proxy forwards connections on 127.0.0.1:Port to a target address.
type Proxy struct {
	Host string
	Port int

	target string
	mu     sync.Mutex
	l      net.Listener // nil while cut
	conns  map[net.Conn]struct{}
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
	p := &Proxy{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, target: target, conns: map[net.Conn]struct{}{}}
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

// Restore listens again on the same port. It fails if another process took
// the port meanwhile.
func (p *Proxy) Restore() error {
	p.mu.Lock()
	defer p.mu.Unlock()
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

// forward connects c to the target, unless the proxy was cut meanwhile.
func (p *Proxy) forward(l net.Listener, c net.Conn) {
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
	p.stats.Accepted++
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		defer p.wg.Done()
		_, _ = io.Copy(dst, src)
		// One direction ended: end both, as a real connection would.
		p.mu.Lock()
		delete(p.conns, c)
		delete(p.conns, up)
		p.mu.Unlock()
		_ = c.Close()
		_ = up.Close()
	}
	p.wg.Add(2)
	go pipe(up, c)
	go pipe(c, up)
}
