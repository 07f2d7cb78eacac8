package source

import (
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// The replication connection's TCP socket gets the large receive buffer;
// the dial function it wraps still does the dialing.
func TestDialConfigReadBuffer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg, err := pgconn.ParseConfig("host=127.0.0.1 port=1 connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	var reads atomic.Uint64
	c := dialConfig(cfg, &reads)
	if c == cfg {
		t.Fatal("dialConfig changed the caller's config instead of a copy")
	}
	conn, err := c.DialFunc(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*countingConn).Conn.(*batchedConn).Conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	var serr error
	if err := raw.Control(func(fd uintptr) { size, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	// Linux grants the value asked for (doubled for its bookkeeping) up to
	// net.core.rmem_max.
	want := replicationReadBuffer
	if b, err := os.ReadFile("/proc/sys/net/core/rmem_max"); err == nil {
		if limit, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			want = min(want, limit)
		}
	}
	if size < want {
		t.Fatalf("SO_RCVBUF = %d, want at least %d (%d asked)", size, want, replicationReadBuffer)
	}

	// Reads count their bytes, the silence detector's sign of life.
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := peer.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(conn, buf, 5)
	if err != nil || reads.Load() != uint64(n) || n != 5 {
		t.Fatalf("read %d bytes (%v), counted %d; want 5 and 5", n, err, reads.Load())
	}
}
