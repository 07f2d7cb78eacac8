package source

import (
	"context"
	"net"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgconn"
)

// replicationReadBuffer is the socket receive buffer of the replication
// connection.
//
// Why: the walsender flushes every message on its own, so while
// pg2kinesis keeps up, its socket receives one small segment per change.
// Linux then clamps the advertised receive window (rcv_ssthresh) to guard
// against many small buffers; on loopback, whose MSS is 64 KiB, the
// window can end below one MSS, and the sender then waits for a window
// that only grows when data arrives: the stream stalls until a window
// probe, for minutes. A fixed, large buffer keeps the window open.
const replicationReadBuffer = 4 << 20

// dialConfig returns a copy of cfg whose TCP connections get the
// replication connection's receive buffer, and whose reads add the bytes
// they return to reads: the silence detector's sign of life, which a
// message arriving slowly in many reads gives too.
func dialConfig(cfg *pgconn.Config, reads *atomic.Uint64) *pgconn.Config {
	c := cfg.Copy()
	dial := c.DialFunc
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	c.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return conn, err
		}
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetReadBuffer(replicationReadBuffer) // best effort: the default works, only more slowly
			conn = newBatchedConn(tcp)
		}
		return &countingConn{Conn: conn, reads: reads}, nil
	}
	return c
}

// countingConn counts the bytes its reads return.
type countingConn struct {
	net.Conn
	reads *atomic.Uint64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.reads.Add(uint64(n))
	return n, err
}
