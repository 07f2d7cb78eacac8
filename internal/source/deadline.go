package source

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// readDeadline bounds the reads of the replication connection by a
// deadline on the socket itself, set once per status period, and ends
// them at once when ctx is cancelled. pgconn would do the same for a
// context with a deadline, but it sets up and tears down its watch of the
// context on every message received, which costs more than decoding the
// message. A read that times out is an error pgconn.Timeout recognises,
// and pgconn resumes a message cut short by it on the next read.
type readDeadline struct {
	nc       net.Conn
	deadline time.Time
	stopCtx  func() bool
}

// watchReads makes the reads of conn end when ctx is cancelled. Call stop
// when the reads are over.
func watchReads(ctx context.Context, conn *pgconn.PgConn) *readDeadline {
	nc := conn.Conn()
	return &readDeadline{
		nc: nc,
		stopCtx: context.AfterFunc(ctx, func() {
			_ = nc.SetReadDeadline(time.Now())
		}),
	}
}

// until makes the reads end at t. The caller checks its context after
// this call: a cancellation just before it would otherwise be overridden.
func (r *readDeadline) until(t time.Time) error {
	if r.deadline.Equal(t) {
		return nil
	}
	if t.IsZero() { // an immediate status update is due: a zero deadline means none
		t = time.Now()
	}
	if err := r.nc.SetReadDeadline(t); err != nil {
		return fmt.Errorf("set the replication connection's read deadline: %w", err)
	}
	r.deadline = t
	return nil
}

// stop ends the watch of the context and clears the deadline, so that
// closing the connection can read the server's answer.
func (r *readDeadline) stop() {
	r.stopCtx()
	_ = r.nc.SetReadDeadline(time.Time{})
}
