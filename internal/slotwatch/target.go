package slotwatch

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// target is where a connection writes: its database and, when the role
// may read pg_control_system(), its cluster. A standby's cluster is its
// primary's: they share the system identifier.
type target struct{ db, system string }

func readTarget(ctx context.Context, conn *pgx.Conn) (target, error) {
	var t target
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&t.db); err != nil {
		return t, err
	}
	// Refused to a role without pg_monitor on some servers: then the
	// databases alone are compared.
	_ = conn.QueryRow(ctx, "SELECT system_identifier::text FROM pg_control_system()").Scan(&t.system)
	return t, nil
}

// beatTargetOK says whether heartbeats may be written on their own
// connection (HeartbeatConnect, --heartbeat-dsn): only where the slot
// decodes them, the slot's database on its cluster. Written elsewhere
// they would never move the slot, silently; so they are not written, and
// the error says so, once. Until the slot's server may be asked (ready:
// Config.Ready, as for the samples) and both connections answer, it
// cannot tell, and the heartbeat is written (on a standby it is what ends
// the slot's creation); it checks again on the next tick.
func (w *Watcher) beatTargetOK(ctx context.Context, ready bool) bool {
	if w.beat.open == nil || w.beatChecked {
		return !w.beatWrong
	}
	if !ready {
		return true
	}
	var slot, beat target
	err := w.attempt(ctx, &w.conn, "read the slot's database", func(ctx context.Context, c *pgx.Conn) (err error) {
		slot, err = readTarget(ctx, c)
		return err
	})
	if err == nil {
		err = w.attempt(ctx, &w.beat, "read the heartbeat's database", func(ctx context.Context, c *pgx.Conn) (err error) {
			beat, err = readTarget(ctx, c)
			return err
		})
	}
	if err != nil {
		return true
	}
	w.beatChecked = true
	if slot.db != beat.db || slot.system != "" && beat.system != "" && slot.system != beat.system {
		w.beatWrong = true
		w.log.Error("--heartbeat-dsn reaches another database than the slot's: heartbeats written there would never move the slot, so none is written; "+
			"point --heartbeat-dsn at the slot's database on the primary (dbname=...)",
			"slot_database", slot.db, "slot_system_identifier", slot.system,
			"heartbeat_database", beat.db, "heartbeat_system_identifier", beat.system)
	}
	return !w.beatWrong
}
