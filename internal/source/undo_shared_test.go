package source

// The publication and slot a start creates may be another instance's
// too: one started at the same moment, or one reading them by the time
// this start fails. A start that did not stream removes what it created,
// but never what another process may be reading: pgoutput fails for good
// on a publication dropped under its slot, and a dropped slot loses its
// changes.

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// Two daemons with their own slots share the default publication. The
// first creates it, then waits to create its slot and is stopped; the
// second streams through the publication meanwhile and must go on.
func TestStoppedStartKeepsPublicationOthersRead(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	exec(t, conn, "CREATE TABLE keyed (id int PRIMARY KEY, v int)")
	exec(t, conn, "SELECT pg_create_logical_replication_slot('other', 'pgoutput')")
	open := testenv.Connect(t, dsn)
	tx, err := open.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(t.Context(), "INSERT INTO keyed VALUES (0, 0)"); err != nil { // takes an xid: slot creation waits
		t.Fatal(err)
	}
	var logs testenv.LogBuffer
	first := testConfig(t, dsn, "first", decode.PGOutput)
	first.CreateSlot, first.Logger = true, slog.New(slog.NewTextHandler(&logs, nil))
	a := start(t, first, true)
	eventually(t, 10*time.Second, "the publication created", func() bool {
		var n int
		return conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_publication WHERE pubname = 'pg2kinesis'").Scan(&n) == nil && n == 1
	})
	b := start(t, testConfig(t, dsn, "other", decode.PGOutput), true)
	waitActive(t, conn, "other")

	if err := a.stop(t); err != nil {
		t.Fatalf("Run after a stop = %v, want nil", err)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	exec(t, conn, "INSERT INTO keyed VALUES (1, 1)")
	deadline := time.After(10 * time.Second)
	for received := false; !received; {
		select {
		case m := <-b.rec.msgs:
			received = strings.Contains(m.data, "keyed")
		case <-b.done:
			t.Fatalf("the other daemon stopped: %v", b.err)
		case <-deadline:
			t.Fatal("the other daemon received no change of keyed within 10s")
		}
	}
	if !strings.Contains(logs.String(), "other") {
		t.Errorf("the kept publication is not explained by the slot that may read it; log:\n%s", logs.String())
	}
	if _, ok := readSlot(t, conn, "first"); ok {
		t.Error("the stopped start left its slot")
	}
}

// A slot this run created, then found held by another instance (a
// standby pair whose other member won START_REPLICATION), is that
// instance's as well: stopping this one, even while the other reconnects,
// must not drop it.
func TestStoppedStandbyKeepsSlotAnotherStreamed(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	exec(t, conn, "CREATE TABLE keyed (id int PRIMARY KEY, v int); CREATE PUBLICATION pg2kinesis FOR ALL TABLES")
	exec(t, conn, "SELECT pg_create_logical_replication_slot('pair', 'pgoutput')")
	other := start(t, testConfig(t, dsn, "pair", decode.PGOutput), true)
	waitActive(t, conn, "pair")

	var logs testenv.LogBuffer
	cfg := testConfig(t, dsn, "pair", decode.PGOutput)
	// Long: the stop below comes before a second attempt could take the
	// slot over.
	cfg.Logger, cfg.StandbyRetry = slog.New(slog.NewTextHandler(&logs, nil)), time.Minute
	src := New(cfg)
	// As after a first session that created the slot and the publication
	// and then lost its connection before START_REPLICATION.
	src.prepared, src.createdSlot, src.createdPub = true, true, true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, &recorder{src: src, msgs: make(chan message, 100)}) }()
	eventually(t, 10*time.Second, "the standby", func() bool { return strings.Contains(logs.String(), "standing by") })

	if err := other.stop(t); err != nil { // the other instance reconnects, say
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after a stop = %v", err)
	}
	if _, ok := readSlot(t, conn, "pair"); !ok {
		t.Fatal("stopping the standby dropped the slot the other instance streamed from")
	}
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_publication WHERE pubname = 'pg2kinesis'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("publication count %d (%v), want it kept", n, err)
	}
}

// Two instances started together both find the publication missing; the
// second's CREATE PUBLICATION waits for the first's to commit and then
// fails on pg_publication's unique index (23505, not 42710): that is the
// same "created meanwhile", and the second starts.
func TestPublicationCreatedConcurrently(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	exec(t, conn, "CREATE TABLE keyed (id int PRIMARY KEY, v int)")
	other := testenv.Connect(t, dsn)
	tx, err := other.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(t.Context(), "CREATE PUBLICATION pg2kinesis FOR ALL TABLES"); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dsn, "together", decode.PGOutput)
	cfg.CreateSlot = true
	r := start(t, cfg, true)
	eventually(t, 10*time.Second, "the second CREATE PUBLICATION waiting", func() bool {
		var n int
		return conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "+
			"AND wait_event_type = 'Lock' AND query LIKE 'CREATE PUBLICATION%'").Scan(&n) == nil && n == 1
	})
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(15 * time.Second)
	for !r.src.Streaming() { // an atomic: createdPub below is read after it was set
		select {
		case <-r.done:
			t.Fatalf("Run = %v, want it streaming through the publication the other instance created", r.err)
		case <-deadline:
			t.Fatal("not streaming within 15s")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if r.src.createdPub {
		t.Error("the publication the other instance created is counted as this run's (a failed start would drop it)")
	}
}
