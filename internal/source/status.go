package source

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
)

// StatusIfDue sends a status update if one is due. A Handler whose
// HandleData runs long (a large streamed transaction replayed at its
// commit) calls it now and then, so that the server, which hears nothing
// else meanwhile, does not time the connection out (wal_sender_timeout).
// Call it only from the Handler's methods.
func (s *Source) StatusIfDue() error {
	if s.conn == nil || time.Now().Before(s.nextStatus) {
		return nil
	}
	if err := s.sendStatus(s.conn); err != nil {
		return err
	}
	s.nextStatus = time.Now().Add(s.cfg.StatusInterval)
	return nil
}

func (s *Source) sendStatus(conn *pgconn.PgConn) error {
	lsn := s.Flushed()
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: lsn,
		WALFlushPosition: lsn,
		WALApplyPosition: lsn,
		ReplyRequested:   s.quiet.ask(),
	})
	if err != nil {
		return fmt.Errorf("send status update (flush %s): %w", lsn, err)
	}
	s.lastStatus.Store(time.Now().UnixNano())
	s.log.Debug("sent status update", "flush_lsn", lsn)
	return nil
}

// shutdown lets in-flight work finish within ShutdownTimeout, then reports
// the final flush LSN. A timeout is logged, not returned: what was not
// acknowledged is simply sent again by the next run.
func (s *Source) shutdown(conn *pgconn.PgConn, h Handler) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := h.Drain(ctx); err != nil {
		s.log.Warn("shutting down before every record was acknowledged; they will be sent again on restart", "err", err)
	}
	if err := s.sendStatus(conn); err != nil {
		s.log.Warn("final status update failed; the slot keeps its last reported position", "err", err)
	}
	s.log.Info("replication stopped", "flush_lsn", s.Flushed())
	return nil
}
