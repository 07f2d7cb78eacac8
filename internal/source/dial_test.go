package source

import (
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// The replication connection's TCP socket gets the large receive buffer;
// the dial function it wraps still does the dialing.
func TestWithReadBuffer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg, err := pgconn.ParseConfig("host=127.0.0.1 port=1 connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	c := withReadBuffer(cfg)
	if c == cfg {
		t.Fatal("withReadBuffer changed the caller's config instead of a copy")
	}
	conn, err := c.DialFunc(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
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
}
