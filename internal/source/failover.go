package source

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
)

// failoverMajor is the first PostgreSQL whose logical slots can be
// failover slots: a standby with sync_replication_slots = on keeps a copy
// of them in step, so that the slot, and the changes it holds, survive the
// standby's promotion (docs/operations.md).
const failoverMajor = 17

// checkFailoverServer refuses --pg-slot-failover on a server without
// failover slots, before anything is created: a slot made without it would
// be lost at the first promotion, which the flag asked to survive.
func (s *Source) checkFailoverServer(conn *pgconn.PgConn) error {
	if !s.cfg.Failover {
		return nil
	}
	if major := serverMajor(conn); major < failoverMajor {
		return setupf("--pg-slot-failover needs PostgreSQL %d or later, whose logical slots can be failover slots that a standby keeps in step; "+
			"this server is %s: leave the flag out (a promotion then loses the slot, see docs/operations.md)",
			failoverMajor, conn.ParameterStatus("server_version"))
	}
	return nil
}

// checkFailoverSlot refuses an existing slot that is not a failover slot
// when --pg-slot-failover asks for one, and says how to make it one
// without losing its changes.
func (s *Source) checkFailoverSlot(info slotInfo) error {
	if !s.cfg.Failover || !info.exists || info.failover {
		return nil
	}
	return setupf("replication slot %q is not a failover slot, but --pg-slot-failover asks for one (a promotion would lose it): "+
		"make it one while nothing streams from it, over a replication connection: "+
		"psql \"dbname=%s replication=database\" -c 'ALTER_REPLICATION_SLOT %s (FAILOVER true)'; "+
		"or start with --recreate-slot (the changes not yet published are lost)", s.cfg.Slot, info.currentDB, s.cfg.Slot)
}

// createSlot creates the slot, a failover slot if asked for (17+); created
// is false when another instance created it meanwhile.
func createSlot(ctx context.Context, conn *pgconn.PgConn, slot, plugin string, failover bool) (created bool, err error) {
	if failover {
		// pglogrepl writes the old syntax, which has no FAILOVER; the
		// option list is 15+, and the flag is checked to be on 17+.
		// slot and plugin are [a-z0-9_] (config) and a known plugin name.
		sql := fmt.Sprintf("CREATE_REPLICATION_SLOT %s LOGICAL %s (SNAPSHOT 'nothing', FAILOVER true)", slot, plugin)
		_, err = pglogrepl.ParseCreateReplicationSlot(conn.Exec(ctx, sql))
	} else {
		_, err = pglogrepl.CreateReplicationSlot(ctx, conn, slot, plugin,
			pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"})
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42710" {
		return false, nil // created meanwhile by another instance: reuse it
	}
	if err != nil {
		return false, fmt.Errorf("create replication slot %q with plugin %s: %w", slot, plugin, err)
	}
	return true, nil
}

// failoverColumn is pg_replication_slots' failover column where the
// server has it (17+), else false.
func failoverColumn(conn *pgconn.PgConn) string {
	if serverMajor(conn) >= failoverMajor {
		return "coalesce(s.failover, false)"
	}
	return "false"
}
