package snapshot

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/backoff"
)

// stateConn is the runner's connection for the state table, opened again,
// with backoff, after it failed: the runner goes on through a Postgres
// restart or a network cut, as the stream does.
type stateConn struct {
	connect func(ctx context.Context) (*pgx.Conn, error)
	log     *slog.Logger
	conn    *pgx.Conn
	attempt int
	next    time.Time // no attempt to connect before
}

// get returns the connection, opening one if it is time to try; nil when
// there is none for now.
func (s *stateConn) get(ctx context.Context) *pgx.Conn {
	if s.conn != nil || time.Now().Before(s.next) {
		return s.conn
	}
	conn, err := s.connect(ctx)
	if err != nil {
		s.failed(ctx, err)
		return nil
	}
	s.conn, s.attempt = conn, 0
	return conn
}

// failed drops the connection after err, and puts off the next attempt.
func (s *stateConn) failed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // stopping: the error is the stop's
	}
	s.close(ctx)
	wait := backoff.Delay(s.attempt, 500*time.Millisecond, 30*time.Second)
	s.attempt++
	s.next = time.Now().Add(wait)
	s.log.Warn("snapshot: the state table cannot be read or written; trying again (the stream goes on)",
		"err", err, "retry_in", wait.Round(time.Millisecond))
}

func (s *stateConn) close(ctx context.Context) {
	if s.conn != nil {
		_ = s.conn.Close(context.WithoutCancel(ctx))
		s.conn = nil
	}
}
