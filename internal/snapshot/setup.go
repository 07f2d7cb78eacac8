package snapshot

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/backoff"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// anyFailed is an error naming the tables whose snapshot failed, for an
// initial_only run that must not exit 0 without them.
func (r *Runner) anyFailed(ctx context.Context, conn *pgx.Conn) error {
	ps, err := LoadState(ctx, conn, r.cfg.StateTable, r.cfg.Slot)
	if err != nil {
		return err
	}
	var names []string
	for _, p := range ps {
		if p.State == Failed {
			names = append(names, fmt.Sprintf("%s (%s)", p.Table, p.Error))
		}
	}
	if len(names) == 0 {
		return nil
	}
	return fmt.Errorf("initial snapshot: %d tables failed: %s; fix the cause and run again, or ask for them with pg2kinesis snapshot --table",
		len(names), strings.Join(names, "; "))
}

// start opens the state connection and sets the snapshot up, trying again
// while the error is a lost or refused connection; another error (a grant
// missing, a server too old) is the user's to fix, and ends the run.
func (r *Runner) start(ctx context.Context, sc *stateConn) error {
	for attempt := 0; ; attempt++ {
		conn, err := r.cfg.Connect(ctx)
		if err == nil {
			if err = r.setUp(ctx, conn); err == nil {
				sc.conn = conn
				return nil
			}
			_ = conn.Close(context.WithoutCancel(ctx))
		}
		if ctx.Err() != nil || r.cfg.Transient == nil || !r.cfg.Transient(err) {
			return err
		}
		wait := backoff.Delay(attempt, 500*time.Millisecond, 30*time.Second)
		r.log.Warn("snapshot: cannot set up; trying again", "err", err, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// setUp creates the state table and asks for the initial snapshot (what a
// slot of the same name snapshotted was forgotten before this run created
// the slot: ForgetSlot).
func (r *Runner) setUp(ctx context.Context, conn *pgx.Conn) error {
	if r.cfg.Plugin == decode.PGOutput {
		var version int
		if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
			return fmt.Errorf("snapshot: read the server version: %w", err)
		}
		if version < 140000 {
			if r.cfg.Mode != Never {
				return fmt.Errorf("--snapshot=%s with pgoutput needs PostgreSQL 14 or later, whose pgoutput sends the logical messages a snapshot's watermarks are (this server is %d); use test_decoding or wal2json", r.cfg.Mode, version)
			}
			r.log.Info("snapshots cannot run with pgoutput before PostgreSQL 14: requests for them are not served", "server_version_num", version)
			return errNoSnapshots
		}
	}
	if r.cfg.Mode == Never {
		// Nothing to create for a run that asks for no snapshot: its
		// user may lack the privilege, and needs no table. Requests are
		// looked for once someone creates it (pg2kinesis snapshot).
		ok, err := Exists(ctx, conn, r.cfg.StateTable)
		if err != nil || !ok {
			return err
		}
	} else if err := CreateState(ctx, conn, r.cfg.StateTable); err != nil {
		return err
	}
	if r.cfg.Mode == Never {
		return nil
	}
	tables, err := r.cfg.Targets(ctx)
	if err != nil {
		return fmt.Errorf("list the tables to snapshot: %w", err)
	}
	r.log.Info("initial snapshot", "mode", r.cfg.Mode, "tables", len(tables))
	return Ensure(ctx, conn, r.cfg.StateTable, r.cfg.Slot, tables)
}
