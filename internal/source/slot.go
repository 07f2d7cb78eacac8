package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// SlotInUseError means another process streams from the slot. Run waits
// and retries: the slot is the lock that makes a second instance a standby.
type SlotInUseError struct {
	Slot string
	PID  int // 0 when the server did not say
}

func (e *SlotInUseError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("replication slot %q is in use by another process", e.Slot)
	}
	return fmt.Sprintf("replication slot %q is in use by process %d", e.Slot, e.PID)
}

// fatalError is a problem that retrying cannot fix.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func fatalf(format string, args ...any) error {
	return &fatalError{fmt.Errorf(format, args...)}
}

// SetupError is a start-time check that failed on something the user must
// change (a table's replica identity, a flag) rather than on a fault: the
// command exits 2 for it, as for a bad flag. Run returns it at once.
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

func setupf(format string, args ...any) error {
	return &fatalError{&SetupError{fmt.Errorf(format, args...)}}
}

// handlerError is an error from the Handler: it stops Run as it is.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }
func (e *handlerError) Unwrap() error { return e.err }

// RetryError marks an error of the Handler that a new session may not
// meet, such as a lost connection to the catalog: Run reconnects, after a
// backoff, as after a lost replication connection, and the changes from
// the flushed position on are read again.
type RetryError struct{ Err error }

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// Transient reports whether err, from a normal connection to the server,
// looks like a lost connection or an unavailable server rather than a
// mistake that would happen again (a wrong password, a missing object, a
// statement_timeout shorter than the query, corrupt data).
func Transient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code != "57014" && !strings.HasPrefix(pgErr.Code, "XX") && retryableClass(pgErr.Code)
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || pgconn.SafeToRetry(err)
}

// retryableClass: connection, resources, shutdown, system, internal.
func retryableClass(code string) bool {
	switch code[:min(2, len(code))] {
	case "08", "53", "57", "58", "XX":
		return true
	}
	return false
}

type errKind int

const (
	kindRetry errKind = iota
	kindFatal
	kindInUse
	kindRetryChange // the handler's RetryError: reconnect, read the change again
)

// classify decides what Run does after a failed session. Server errors are
// fatal unless their class says the connection or server is the problem.
func classify(err error) errKind {
	var fe *fatalError
	var re *RetryError
	var he *handlerError
	var iu *SlotInUseError
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &re):
		return kindRetryChange
	case errors.As(err, &fe), errors.As(err, &he):
		return kindFatal
	case errors.As(err, &iu):
		return kindInUse
	case errors.As(err, &pgErr):
		if pgErr.Code == "55006" { // object_in_use: the slot is active elsewhere
			return kindInUse
		}
		if retryableClass(pgErr.Code) {
			return kindRetry
		}
		return kindFatal
	}
	return kindRetry
}

// checkServer fails when the server cannot do logical decoding at all.
func checkServer(ctx context.Context, conn *pgconn.PgConn) error {
	rows, err := query(ctx, conn, "SELECT current_setting('wal_level')")
	if err != nil {
		return fmt.Errorf("read wal_level: %w", err)
	}
	if len(rows) != 1 {
		return fmt.Errorf("read wal_level: got %d rows", len(rows))
	}
	if lvl := rows[0][0]; lvl != "logical" {
		return fatalf("the server has wal_level=%s, but logical decoding needs wal_level=logical: "+
			"set it in postgresql.conf (on RDS/Aurora: rds.logical_replication=1 in the parameter group) and restart Postgres", lvl)
	}
	return nil
}

type slotInfo struct {
	exists         bool
	plugin         string
	slotType       string
	database       string
	currentDB      string
	activePID      int
	confirmedFlush pglogrepl.LSN
	failover       bool // a failover slot (PostgreSQL 17+)
}

func querySlot(ctx context.Context, conn *pgconn.PgConn, slot string) (slotInfo, error) {
	// The replication protocol takes simple queries only, hence the literal;
	// config has already restricted slot names to [a-z0-9_].
	rows, err := query(ctx, conn, "SELECT s.plugin, s.slot_type, s.database, coalesce(s.active_pid, 0), "+
		"coalesce(s.confirmed_flush_lsn, '0/0'), current_database(), "+failoverColumn(conn)+" "+
		"FROM (SELECT 1) AS one LEFT JOIN pg_catalog.pg_replication_slots s ON s.slot_name = "+quoteLiteral(slot))
	if err != nil {
		return slotInfo{}, fmt.Errorf("look up replication slot %q: %w", slot, err)
	}
	if len(rows) != 1 {
		return slotInfo{}, fmt.Errorf("look up replication slot %q: got %d rows", slot, len(rows))
	}
	r := rows[0]
	info := slotInfo{exists: r[1] != "", plugin: r[0], slotType: r[1], database: r[2], currentDB: r[5], failover: r[6] == "t"}
	if info.activePID, err = strconv.Atoi(r[3]); err != nil {
		return slotInfo{}, fmt.Errorf("look up replication slot %q: active_pid %q: %w", slot, r[3], err)
	}
	if info.confirmedFlush, err = pglogrepl.ParseLSN(r[4]); err != nil {
		return slotInfo{}, fmt.Errorf("look up replication slot %q: confirmed_flush_lsn %q: %w", slot, r[4], err)
	}
	return info, nil
}

// prepareSlot makes sure the slot exists and matches the configuration,
// and, for pgoutput, that the publication exists. The order matters: the
// slot is checked before a publication is created (a start that cannot
// stream creates nothing), and the publication is created before the slot
// (see ensurePublication). Creation and recreation happen on the first
// connection only: a slot that disappears later was dropped from under
// us, and quietly creating a new one would skip every change in between.
func (s *Source) prepareSlot(ctx context.Context, conn *pgconn.PgConn) (slotInfo, error) {
	slot, plugin := s.cfg.Slot, s.cfg.Plugin.String()
	// Bounded queries, but for the creation of the slot, which waits for
	// the transactions running then to end.
	setup, cancel := s.setupContext(ctx)
	defer cancel()
	if err := s.checkFailoverServer(conn); err != nil {
		return slotInfo{}, err
	}
	info, err := querySlot(setup, conn, slot)
	if err != nil {
		return info, err
	}
	recreate := !s.prepared && s.cfg.RecreateSlot && info.exists
	switch {
	case recreate && info.activePID != 0:
		return info, &SlotInUseError{Slot: slot, PID: info.activePID}
	case recreate:
	case info.exists:
		if err := info.check(slot, plugin); err != nil {
			return info, err
		}
		if err := s.checkFailoverSlot(info); err != nil {
			return info, err
		}
	case s.prepared:
		return info, fatalf("replication slot %q no longer exists: it was dropped while pg2kinesis was streaming from it, "+
			"or the server is a standby promoted since and the slot was not a failover slot (--pg-slot-failover, PostgreSQL 17+), "+
			"so changes since then may be missing; create it again with --create-slot and re-sync consumers", slot)
	case !s.cfg.CreateSlot && !s.cfg.RecreateSlot:
		return info, fatalf("replication slot %q does not exist in database %q; start with --create-slot to create it", slot, info.currentDB)
	}
	if s.cfg.Plugin == decode.PGOutput && !s.prepared {
		if err := s.ensurePublication(setup, conn); err != nil {
			return info, err
		}
	}
	if recreate {
		if err := pglogrepl.DropReplicationSlot(setup, conn, slot, pglogrepl.DropReplicationSlotOptions{}); err != nil {
			return info, fmt.Errorf("drop replication slot %q (--recreate-slot): %w", slot, err)
		}
		s.log.Info("dropped replication slot (--recreate-slot)")
		info.exists = false
	}
	if !info.exists {
		if s.cfg.BeforeCreateSlot != nil {
			if err := s.cfg.BeforeCreateSlot(ctx); err != nil {
				return info, fmt.Errorf("before creating replication slot %q: %w", slot, err)
			}
		}
		s.creatorPID = conn.PID()
		s.creating.Store(true)
		created, err := createSlot(ctx, conn, slot, plugin, s.cfg.Failover)
		s.creating.Store(false)
		if err != nil {
			return info, err
		}
		if created {
			s.createdSlot = true
			s.log.Info("created replication slot", "plugin", plugin)
		}
		after, cancel := s.setupContext(ctx)
		defer cancel()
		if info, err = querySlot(after, conn, slot); err != nil {
			return info, err
		}
	}
	s.prepared = true
	if err := info.check(slot, plugin); err != nil {
		return info, err
	}
	if err := s.checkFailoverSlot(info); err != nil { // made meanwhile by another instance without it
		return info, err
	}
	if info.activePID != 0 {
		return info, &SlotInUseError{Slot: slot, PID: info.activePID}
	}
	return info, nil
}

func (info slotInfo) check(slot, plugin string) error {
	if info.slotType != "logical" {
		return fatalf("replication slot %q is a %s slot, but pg2kinesis needs a logical one: choose another --pg-slot-name", slot, info.slotType)
	}
	if info.database != info.currentDB {
		return fatalf("replication slot %q belongs to database %q, but pg2kinesis is connected to %q: "+
			"pass -d %s, or choose another --pg-slot-name", slot, info.database, info.currentDB, info.database)
	}
	if info.plugin != plugin {
		return fatalf("replication slot %q uses output plugin %q, but --pg-slot-output-plugin is %q: "+
			"pass --pg-slot-output-plugin %s, or --recreate-slot to recreate the slot with %s (unpublished changes are lost)",
			slot, info.plugin, plugin, info.plugin, plugin)
	}
	return nil
}

// query runs a simple query and returns its rows as text; NULL reads "".
func query(ctx context.Context, conn *pgconn.PgConn, sql string) ([][]string, error) {
	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	var rows [][]string
	for _, res := range results {
		for _, r := range res.Rows {
			row := make([]string, len(r))
			for i, v := range r {
				row[i] = string(v)
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
