package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/decode/pgoutput"
	"github.com/pg2kinesis/pg2kinesis/internal/snapshot"
	"github.com/pg2kinesis/pg2kinesis/internal/spool"
)

// streams holds pgoutput's streamed transactions (protocol 2) on disk
// until they commit; an aborted one, or an aborted subtransaction of one,
// publishes nothing.
type streams struct {
	parser *pgoutput.Parser
	spool  *spool.Spool
	open   uint32 // the transaction of the open segment
}

// statusEvery is how many replayed messages go by between checks that a
// status update is due, so that a long replay keeps the connection alive.
const statusEvery = 1024

func (h *changeHandler) streamed(ctx context.Context, ev *decode.Event, m pglogrepl.XLogData) error {
	s := h.streams
	if s == nil {
		return fmt.Errorf("%s message at LSN %s from a plugin that does not stream", ev.Kind, m.WALStart)
	}
	switch ev.Kind {
	case decode.KindStreamStart:
		if ev.FirstSegment { // sent again from its start: drop any stale copy
			if err := s.spool.Discard(ev.XID); err != nil {
				return err
			}
		}
		s.open = ev.XID
	case decode.KindStreamed:
		return s.spool.Append(s.open, ev.XID, m.WALStart, m.WALData)
	case decode.KindStreamAbort:
		return s.spool.Abort(ev.XID, ev.SubXID)
	case decode.KindStreamCommit:
		xid, commitLSN, commitTime := ev.XID, ev.CommitLSN, ev.CommitTime
		if err := s.replay(ctx, h, xid, commitLSN, commitTime); err != nil {
			return err
		}
		h.txXID = xid
		h.commit(m.WALStart, commitTime)
		return nil
	}
	return nil
}

// replay publishes the held messages of transaction xid, which commits at
// commitLSN and commitTime. (Parsing them reuses the parser's event, so the
// Stream Commit event's fields must be read before.)
func (s *streams) replay(ctx context.Context, h *changeHandler, xid uint32, commitLSN pglogrepl.LSN, commitTime time.Time) error {
	n := 0
	return s.spool.Replay(xid, func(lsn pglogrepl.LSN, data []byte) error {
		if n++; n%statusEvery == 0 {
			if err := h.src.StatusIfDue(); err != nil {
				return err
			}
		}
		ev, err := s.parser.ParseStreamed(data, lsn, xid)
		if err != nil {
			return err
		}
		switch {
		case ev.Kind == decode.KindChange:
			ev.CommitLSN, ev.CommitTime = commitLSN, commitTime
			return h.change(ctx, ev)
		case ev.Kind == decode.KindMessage && ev.MessageTransact && ev.MessagePrefix == snapshot.Prefix:
			// A watermark whose transaction the server streamed (it
			// streams the largest one when memory runs short): placed
			// at its commit like the changes around it.
			h.txXID, h.commitLSN, h.commitTime = xid, commitLSN, commitTime
			return h.watermark(ctx, ev)
		}
		return nil
	})
}

// SessionStart forgets what the last session left unfinished: the server
// describes the relations again and re-sends every transaction that
// commits after the flush LSN from its start.
func (h *changeHandler) SessionStart() {
	if h.snap != nil {
		h.snap.Restart()
	}
	if s := h.streams; s != nil {
		s.parser.Reset()
		_ = s.spool.Close()
		s.open = 0
	}
}
