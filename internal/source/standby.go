package source

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// standbyDecodingMajor is the first PostgreSQL that decodes on a hot
// standby: before it, a standby refuses to create or read a logical slot.
const standbyDecodingMajor = 16

// checkStandby refuses a standby that cannot serve the slot, and a start
// on one whose heartbeat would have to write there. It warns once when
// hot_standby_feedback is off: the primary may then remove catalog rows
// that the slot still needs, and the standby invalidates the slot.
func (s *Source) checkStandby(ctx context.Context, conn *pgconn.PgConn) error {
	rows, err := query(ctx, conn, "SELECT pg_is_in_recovery(), current_setting('hot_standby_feedback')")
	if err != nil {
		return fmt.Errorf("read pg_is_in_recovery(): %w", err)
	}
	if len(rows) != 1 || len(rows[0]) != 2 {
		return fmt.Errorf("read pg_is_in_recovery(): got %d rows", len(rows))
	}
	if rows[0][0] != "t" {
		return nil
	}
	version := conn.ParameterStatus("server_version")
	if serverMajor(conn) < standbyDecodingMajor {
		return setupf("the server is a hot standby (PostgreSQL %s), and decoding on a standby needs PostgreSQL %d or later: "+
			"point pg2kinesis at the primary (see docs/operations.md, \"Decoding from a standby\")", version, standbyDecodingMajor)
	}
	if s.cfg.Heartbeat && !s.cfg.HeartbeatElsewhere && !s.prepared {
		return setupf("the server is a hot standby, where the heartbeat cannot write its messages: " +
			"give --heartbeat-dsn with the primary's connection string (the slot's database), or turn the heartbeat off with --heartbeat-interval 0")
	}
	if !s.warnedFeedback {
		s.warnedFeedback = true
		if rows[0][1] != "on" {
			s.log.Warn("the server is a hot standby with hot_standby_feedback off: the primary may remove catalog rows the slot needs, " +
				"and the slot is then invalidated; set hot_standby_feedback = on on the standby")
		} else {
			s.log.Info("the server is a hot standby: decoding there")
		}
	}
	return nil
}

// CreatingSlot reports whether the slot is being created now.
func (s *Source) CreatingSlot() bool { return s.creating.Load() }
