package source

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// --pg-slot-failover on every version: before 17 the start is refused,
// naming the flag, and creates nothing; on 17+ a new slot is a failover
// slot, an existing slot that is not one is refused with the way to make
// it one, and once made one it streams. No skip: each version checks what
// it must do.
func TestSlotFailover(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	exec(t, conn, "CREATE TABLE items (id int PRIMARY KEY)")
	cfg := testConfig(t, dsn, "fo", decode.TestDecoding)
	cfg.CreateSlot, cfg.Failover = true, true

	if testenv.ServerMajor(t) < failoverMajor {
		err := runOnce(t, cfg)
		if err == nil || !strings.Contains(err.Error(), "--pg-slot-failover needs PostgreSQL 17") {
			t.Fatalf("Run = %v, want the flag refused on PostgreSQL %d", err, testenv.ServerMajor(t))
		}
		if classify(err) != kindFatal || !isSetup(err) {
			t.Errorf("Run = %v: want a fatal setup error (exit 2)", err)
		}
		if _, ok := readSlot(t, conn, "fo"); ok {
			t.Error("the refused start created the slot")
		}
		return
	}

	t.Run("created", func(t *testing.T) {
		r := start(t, cfg, true)
		waitActive(t, conn, "fo")
		if !slotFailover(t, conn, "fo") {
			t.Fatal("the slot created with --pg-slot-failover is not a failover slot")
		}
		if err := r.stop(t); err != nil {
			t.Fatalf("Run after cancel = %v", err)
		}
	})
	t.Run("existing slot not one", func(t *testing.T) {
		exec(t, conn, "SELECT pg_create_logical_replication_slot('plain', 'test_decoding')")
		cfg := cfg
		cfg.Slot = "plain"
		err := runOnce(t, cfg)
		if err == nil || !strings.Contains(err.Error(), "not a failover slot") ||
			!strings.Contains(err.Error(), "ALTER_REPLICATION_SLOT plain (FAILOVER true)") || !strings.Contains(err.Error(), "--recreate-slot") {
			t.Fatalf("Run = %v, want the slot refused with the ways to make it one", err)
		}
		if !isSetup(err) {
			t.Errorf("Run = %v: want a setup error (exit 2)", err)
		}
		// The advice works: the slot, made a failover slot, streams.
		alterFailover(t, dsn, "plain")
		if !slotFailover(t, conn, "plain") {
			t.Fatal("ALTER_REPLICATION_SLOT did not make the slot a failover slot")
		}
		r := start(t, cfg, true)
		waitActive(t, conn, "plain")
		exec(t, conn, "INSERT INTO items VALUES (1)")
		r.rec.next(t, "table public.items: INSERT: id[integer]:1", 10*time.Second)
	})
}

func isSetup(err error) bool {
	var se *SetupError
	return errors.As(err, &se)
}

func slotFailover(t *testing.T, conn *pgx.Conn, slot string) bool {
	t.Helper()
	var failover bool
	if err := conn.QueryRow(context.Background(), "SELECT failover FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&failover); err != nil {
		t.Fatalf("read slot %s's failover: %v", slot, err)
	}
	return failover
}

// alterFailover makes slot a failover slot as the error message says, over
// a replication connection.
func alterFailover(t *testing.T, dsn, slot string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	repl, err := pgconn.Connect(ctx, dsn+" replication=database")
	if err != nil {
		t.Fatal(err)
	}
	defer repl.Close(context.Background())
	if _, err := repl.Exec(ctx, "ALTER_REPLICATION_SLOT "+slot+" (FAILOVER true)").ReadAll(); err != nil {
		t.Fatalf("ALTER_REPLICATION_SLOT %s: %v", slot, err)
	}
}
