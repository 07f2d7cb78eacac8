package main

// The promotion fault (PostgreSQL 17+): the primary dies (-m immediate)
// under the workload, its physical standby is promoted, and pg2kinesis,
// given both hosts, goes on from the failover slot that the standby kept
// in step; without --pg-slot-failover it stops, naming the flag.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// failoverPair is a primary and a standby set up as docs/operations.md
// says for failover slots, with synchronous replication on top: the
// workload counts a transaction as committed once the primary says so,
// and only a commit the standby has too survives the promotion. dsn names
// both, for the server that accepts writes.
func failoverPair(t *testing.T) (primary, standby *testenv.Server, dsn string) {
	t.Helper()
	testenv.RequireMajor(t, 17, "a failover slot")
	primary = testenv.StartCluster(t, testenv.ClusterOptions{Conf: "wal_level = logical"})
	standby = testenv.StartStandby(t, primary, testenv.StandbyOptions{Slot: "standby1", ConninfoDB: "postgres",
		Conf: "hot_standby_feedback = on\nsync_replication_slots = on"})
	pconn := testenv.Connect(t, primary.DSN)
	// Set after the copy: the standby must not inherit them.
	for _, sql := range []string{
		"ALTER SYSTEM SET synchronized_standby_slots = 'standby1'",
		"ALTER SYSTEM SET synchronous_standby_names = 'standby'",
		"SELECT pg_reload_conf()",
	} {
		if _, err := pconn.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	waitFor(t, 30*time.Second, "the standby to replicate synchronously", func() bool {
		var sync bool
		err := pconn.QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_stat_replication WHERE application_name = 'standby' AND sync_state = 'sync')").Scan(&sync)
		return err == nil && sync
	})
	p, s := port(t, primary.DSN), port(t, standby.DSN)
	dsn = fmt.Sprintf("host=127.0.0.1,127.0.0.1 port=%d,%d user=postgres dbname=postgres sslmode=disable target_session_attrs=read-write", p, s)
	return primary, standby, dsn
}

func port(t *testing.T, dsn string) uint16 {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Port
}

// promotionArgs are rig.args with the two-host DSN.
func (r *rig) promotionArgs(dsn string, flags ...string) []string {
	return append([]string{"--pg-dsn", dsn, "-s", r.slot, "--create-slot", "--kinesis-endpoint", r.ep, "-k", r.stream,
		"--full-change", "--partition-key", "pk", "--status-interval", "100ms", "--flush-interval", "50ms", "--max-backoff", "1s"}, flags...)
}

// waitSynced waits until the standby holds slot as a synchronised slot
// that survives a promotion: the synchronisation worker first makes a
// temporary one, made persistent once the standby has caught up with it.
func waitSynced(t *testing.T, standby *testenv.Server, slot string, d *daemon) {
	t.Helper()
	sconn := testenv.Connect(t, standby.DSN)
	waitFor(t, 60*time.Second, "slot "+slot+" to be synchronised to the standby", func() bool {
		running(t, d)
		var ok bool
		err := sconn.QueryRow(t.Context(),
			"SELECT synced AND failover AND NOT temporary FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&ok)
		return err == nil && ok
	})
}

// (g) The primary dies under the workload and its standby is promoted:
// pg2kinesis resumes on the new primary from the synchronised failover
// slot, and every change that committed is in the stream, in commit order
// per row.
func TestFaultPromotion(t *testing.T) {
	t.Parallel()
	primary, standby, dsn := failoverPair(t)
	r := newRig(t, dsn)
	d := r.begin(t, r.promotionArgs(dsn, "--pg-slot-failover"))
	r.waitRecords(t, 500, d)
	waitSynced(t, standby, r.slot, d)

	primary.StopImmediate(t)
	standby.Promote(t)
	waitLog(t, d, "replication connection lost; reconnecting", 1)
	waitLog(t, d, "streaming from replication slot", 2)
	r.w.waitTxns(t, 300)
	r.end(t, d)
}

// (g') The same without --pg-slot-failover: the new primary has no slot,
// and pg2kinesis exits 1 with one line naming the slot and the flag,
// without creating a slot there (which would skip the changes between).
func TestFaultPromotionWithoutFailoverSlot(t *testing.T) {
	t.Parallel()
	primary, standby, dsn := failoverPair(t)
	r := newRig(t, dsn)
	d := r.begin(t, r.promotionArgs(dsn))
	r.waitRecords(t, 100, d)

	primary.StopImmediate(t)
	standby.Promote(t)
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("pg2kinesis still runs 60s after the promotion; log:\n%s", d.log())
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit code %d, want 1; log:\n%s", code, d.log())
	}
	var plain []string
	for _, l := range strings.Split(strings.TrimSpace(d.log()), "\n") {
		if !strings.HasPrefix(l, "time=") {
			plain = append(plain, l)
		}
	}
	want := fmt.Sprintf("pg2kinesis: replication slot %q no longer exists", r.slot)
	if len(plain) != 1 || !strings.HasPrefix(plain[0], want) || !strings.Contains(plain[0], "--pg-slot-failover") {
		t.Fatalf("stderr's plain lines %q, want one starting %q and naming --pg-slot-failover; log:\n%s", plain, want, d.log())
	}
	sconn := testenv.Connect(t, standby.DSN)
	var exists bool
	if err := sconn.QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)", r.slot).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatal("pg2kinesis created the slot on the new primary")
	}
	r.w.finish(t)
}
