package main

// Decoding from a hot standby (PostgreSQL 16+): the slot lives on the
// standby, the heartbeat writes on the primary (--heartbeat-dsn).

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// standbyPair is a throwaway primary (wal_level=logical) with a table
// "t", and a hot standby of it with hot_standby_feedback on, of the
// matrix's version; its connections are to the postgres database.
func standbyPair(t *testing.T) (primary, standby *testenv.Server) {
	t.Helper()
	primary = testenv.StartCluster(t, testenv.ClusterOptions{Conf: "wal_level = logical"})
	conn := testenv.Connect(t, primary.DSN)
	if _, err := conn.Exec(t.Context(), "CREATE TABLE t (id int PRIMARY KEY, v text)"); err != nil {
		t.Fatal(err)
	}
	standby = testenv.StartStandby(t, primary, testenv.StandbyOptions{Slot: "standby", Conf: "hot_standby_feedback = on"})
	return primary, standby
}

// waitStandbySlot waits until slot streams on the standby. Its creation
// there waits for the primary to log its running transactions, which the
// primary's bgwriter does only every 15 s: the test asks the primary for
// the record (pg_log_standby_snapshot) until the slot is there.
func waitStandbySlot(t *testing.T, primary, standby *pgx.Conn, slot string, d *daemon) {
	t.Helper()
	waitFor(t, 60*time.Second, "slot "+slot+" to stream on the standby", func() bool {
		running(t, d)
		if _, err := primary.Exec(t.Context(), "SELECT pg_log_standby_snapshot()"); err != nil {
			t.Fatal(err)
		}
		var ok bool
		err := standby.QueryRow(t.Context(),
			"SELECT active AND confirmed_flush_lsn IS NOT NULL FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&ok)
		return err == nil && ok
	})
}

// pg2kinesis creates its slot on the standby and streams the rows
// committed on the primary from it; the heartbeat, written on the primary
// through --heartbeat-dsn, is decoded from the standby's slot, which
// follows the primary's WAL.
func TestStandbyDecoding(t *testing.T) {
	t.Parallel()
	testenv.RequireMajor(t, 16, "logical decoding on a standby")
	primary, standby := standbyPair(t)
	pconn := testenv.Connect(t, primary.DSN)
	sconn := testenv.Connect(t, standby.DSN)
	slot := testenv.Name(t)
	d := startStdoutDaemon(t, append(connArgs(t, standby.DSN), "-s", slot, "--create-slot", "--full-change", "--log-level", "debug",
		"--status-interval", "100ms", "--flush-interval", "50ms", "--lag-interval", "200ms",
		"--heartbeat-interval", "200ms", "--heartbeat-dsn", primary.DSN)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", d.log())
		}
	})
	waitStandbySlot(t, pconn, sconn, slot, d.daemon)

	const rows = 20
	for i := 1; i <= rows; i++ {
		if _, err := pconn.Exec(t.Context(), "INSERT INTO t VALUES ($1, $2)", i, fmt.Sprintf("row%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Join(d.waitLine(t, fmt.Sprintf("row%03d", rows)), "\n")
	for i := 1; i <= rows; i++ {
		if !strings.Contains(lines, fmt.Sprintf("row%03d", i)) {
			t.Errorf("row %d is not on stdout:\n%s", i, lines)
		}
	}

	// Nothing but the heartbeat writes now: the slot on the standby
	// passes a position of the primary's WAL taken after the rows, and
	// the heartbeat's messages were decoded there.
	var target string
	if err := pconn.QueryRow(t.Context(), "SELECT pg_current_wal_lsn()::text").Scan(&target); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the standby's slot to pass the primary's "+target, func() bool {
		running(t, d.daemon)
		return testenv.SlotPassed(t, sconn, slot, target)
	})
	waitLog(t, d.daemon, `msg="logical message (not published)" prefix=pg2kinesis`, 2)
	d.stop(t)
	// Neither the heartbeat nor the lag's sample (against the WAL the
	// standby replayed) failed.
	if strings.Contains(d.log(), "level=WARN") || strings.Contains(d.log(), "level=ERROR") {
		t.Fatalf("warnings in the log:\n%s", d.log())
	}
	var onPrimary int
	if err := pconn.QueryRow(t.Context(), "SELECT count(*) FROM pg_replication_slots WHERE slot_type = 'logical'").Scan(&onPrimary); err != nil || onPrimary != 0 {
		t.Fatalf("%d logical slots on the primary (%v), want none: the slot belongs on the standby", onPrimary, err)
	}
}

// A start on a standby is refused, exit 2 with one line saying why and
// no slot made: before 16, which cannot decode there; from 16 on, with
// the heartbeat on but no --heartbeat-dsn, since a standby cannot write.
func TestStandbyStartChecks(t *testing.T) {
	t.Parallel()
	_, standby := standbyPair(t)
	sconn := testenv.Connect(t, standby.DSN)
	slot := testenv.Name(t)
	args := append(connArgs(t, standby.DSN), "-s", slot, "--create-slot", "--sink", "stdout", "--heartbeat-interval", "1s")
	want := []string{"--heartbeat-dsn", "--heartbeat-interval 0"}
	if testenv.ServerMajor(t) < 16 {
		want = []string{"hot standby", "needs PostgreSQL 16"}
	}
	_, stderr, code := pg2kinesis(t, args...)
	if code != exitUsage {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr)
	}
	checkOneLine(t, stderr, want...)
	var slots int
	if err := sconn.QueryRow(t.Context(), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&slots); err != nil || slots != 0 {
		t.Errorf("the refused start left %d slots (%v)", slots, err)
	}
}
