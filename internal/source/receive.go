package source

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// receive reads the stream until ctx ends or the connection fails.
func (s *Source) receive(ctx context.Context, conn *pgconn.PgConn, h Handler) error {
	s.conn, s.nextStatus = conn, time.Now().Add(s.cfg.StatusInterval)
	defer func() { s.conn = nil }()
	rd := watchReads(ctx, conn)
	defer rd.stop()
	for {
		if ctx.Err() != nil {
			return s.shutdown(conn, h)
		}
		if err := s.StatusIfDue(); err != nil {
			return err
		}
		if err := rd.until(s.nextStatus); err != nil {
			return err
		}
		if ctx.Err() != nil { // stopped before the deadline was set: it may have undone the stop's
			return s.shutdown(conn, h)
		}
		raw, err := conn.ReceiveMessage(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return s.shutdown(conn, h)
			}
			if pgconn.Timeout(err) {
				if err := s.quiet.timedOut(time.Now(), s.reads.Load()); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("receive replication stream: %w", err)
		}
		replyNow, err := s.dispatch(ctx, raw, h)
		if err != nil {
			if ctx.Err() != nil { // the handler was cut short by the stop itself
				return s.shutdown(conn, h)
			}
			return err
		}
		if replyNow {
			s.nextStatus = time.Time{}
		}
	}
}

// dispatch hands one server message to h. replyNow is set when the server
// asked for an immediate status update.
func (s *Source) dispatch(ctx context.Context, raw pgproto3.BackendMessage, h Handler) (replyNow bool, err error) {
	switch msg := raw.(type) {
	case *pgproto3.ErrorResponse:
		return false, fmt.Errorf("replication stream: %w", pgconn.ErrorResponseToPgError(msg))
	case *pgproto3.CopyDone:
		return false, errors.New("replication stream: the server ended it (CopyDone)")
	case *pgproto3.NoticeResponse:
		return false, s.skippedPublication(msg)
	case *pgproto3.CopyData:
		if len(msg.Data) == 0 {
			return false, nil
		}
		switch msg.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
			if err != nil {
				return false, fmt.Errorf("parse primary keepalive: %w", err)
			}
			caughtUp := !s.quiet.reply() && !ka.ReplyRequested
			if err := h.HandleKeepalive(ctx, ka.ServerWALEnd, caughtUp); err != nil {
				return false, &handlerError{err}
			}
			return ka.ReplyRequested, nil
		case pglogrepl.XLogDataByteID:
			xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
			if err != nil {
				return false, fmt.Errorf("parse XLogData: %w", err)
			}
			if err := h.HandleData(ctx, xld); err != nil {
				return false, &handlerError{err}
			}
		}
	}
	return false, nil
}
