package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want errKind
	}{
		{"network", errors.New("read tcp: connection reset by peer"), kindRetry},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, kindRetry},
		{"connection failure", &pgconn.PgError{Code: "08006"}, kindRetry},
		{"too many connections", &pgconn.PgError{Code: "53300"}, kindRetry},
		{"slot active", &pgconn.PgError{Code: "55006"}, kindInUse},
		{"slot in use", &SlotInUseError{Slot: "s", PID: 7}, kindInUse},
		{"auth", &pgconn.PgError{Code: "28P01"}, kindFatal},
		{"undefined object", &pgconn.PgError{Code: "42704"}, kindFatal},
		{"ours", fatalf("nope"), kindFatal},
		{"handler", &handlerError{errors.New("sink down")}, kindFatal},
		{"handler asks for a retry", &handlerError{&RetryError{errors.New("catalog down")}}, kindRetryChange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.err); got != tc.want {
				t.Errorf("classify(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"refused", fmt.Errorf("load: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), true},
		{"cut", io.ErrUnexpectedEOF, true},
		{"timeout", fmt.Errorf("load: %w", context.DeadlineExceeded), true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"permission", &pgconn.PgError{Code: "42501"}, false},
		{"statement timeout", &pgconn.PgError{Code: "57014"}, false},
		{"index corrupted", &pgconn.PgError{Code: "XX002"}, false},
		{"password", &pgconn.PgError{Code: "28P01"}, false},
		{"no such database", &pgconn.PgError{Code: "3D000"}, false},
		{"canceled", context.Canceled, false},
		{"other", errors.New("scan: cannot convert"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Transient(tc.err); got != tc.want {
				t.Errorf("Transient(%v) = %t, want %t", tc.err, got, tc.want)
			}
		})
	}
}

func TestMissingSlotNamesTheFlag(t *testing.T) {
	dsn := testenv.Database(t)
	err := runOnce(t, testConfig(t, dsn, "missing_slot", decode.TestDecoding))
	if err == nil || !strings.Contains(err.Error(), `"missing_slot" does not exist`) || !strings.Contains(err.Error(), "--create-slot") {
		t.Fatalf("Run = %v, want an error naming the slot and --create-slot", err)
	}
}

func TestPluginMismatchNamesBoth(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	// pgoutput, not wal2json, as the other plugin: every server version
	// of the matrix (make test-matrix) has it.
	exec(t, conn, "SELECT pg_create_logical_replication_slot('mism', 'pgoutput')")
	err := runOnce(t, testConfig(t, dsn, "mism", decode.TestDecoding))
	if err == nil || !strings.Contains(err.Error(), `"pgoutput"`) || !strings.Contains(err.Error(), `"test_decoding"`) {
		t.Fatalf("Run = %v, want an error naming pgoutput and test_decoding", err)
	}
}

func TestWalLevelNotLogical(t *testing.T) {
	dsn := testenv.Cluster(t, "wal_level = replica")
	err := runOnce(t, testConfig(t, dsn, "any", decode.TestDecoding))
	if err == nil || !strings.Contains(err.Error(), "wal_level=replica") || !strings.Contains(err.Error(), "wal_level=logical") {
		t.Fatalf("Run = %v, want an error naming wal_level", err)
	}
}

func TestConnectionRefusedFailsFast(t *testing.T) {
	cfg := testConfig(t, "host=127.0.0.1 port=1 user=postgres sslmode=disable", "s", decode.TestDecoding)
	if err := runOnce(t, cfg); err == nil || !strings.Contains(err.Error(), "connect to Postgres") {
		t.Fatalf("Run = %v, want a connection error", err)
	}
}

func TestCreateSlotThenReuse(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	exec(t, conn, "CREATE TABLE items (id int PRIMARY KEY, name text)")
	cfg := testConfig(t, dsn, "created", decode.TestDecoding)
	cfg.CreateSlot = true

	first := start(t, cfg, true)
	waitActive(t, conn, "created")
	if r, _ := readSlot(t, conn, "created"); r.plugin != "test_decoding" {
		t.Fatalf("created slot has plugin %q", r.plugin)
	}
	exec(t, conn, "INSERT INTO items VALUES (1, 'one')")
	first.rec.next(t, "id[integer]:1", 10*time.Second)
	first.rec.next(t, "COMMIT", 10*time.Second) // flushed: not sent again
	if err := first.stop(t); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}

	// --create-slot on an existing slot reuses it and resumes after what
	// was flushed.
	exec(t, conn, "INSERT INTO items VALUES (2, 'two')")
	second := start(t, cfg, true)
	m := second.rec.next(t, "table public.items: INSERT:", 10*time.Second)
	if !strings.Contains(m.data, "id[integer]:2") {
		t.Fatalf("reused slot streamed %q first, want row 2 (row 1 was flushed)", m.data)
	}
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'created'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("slots named created: %d (%v), want 1", n, err)
	}
}

func TestRecreateSlotDropsOldChanges(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	exec(t, conn, "CREATE TABLE items (id int PRIMARY KEY, name text)")
	exec(t, conn, "SELECT pg_create_logical_replication_slot('again', 'pgoutput')")
	exec(t, conn, "INSERT INTO items VALUES (1, 'before')")

	cfg := testConfig(t, dsn, "again", decode.TestDecoding)
	cfg.CreateSlot = true // both given: recreate wins
	cfg.RecreateSlot = true
	r := start(t, cfg, true)
	waitActive(t, conn, "again")
	if row, _ := readSlot(t, conn, "again"); row.plugin != "test_decoding" {
		t.Fatalf("recreated slot has plugin %q, want test_decoding", row.plugin)
	}
	exec(t, conn, "INSERT INTO items VALUES (2, 'after')")
	m := r.rec.next(t, "table public.items: INSERT:", 10*time.Second)
	if !strings.Contains(m.data, "'after'") {
		t.Fatalf("first change after recreation = %q, want the 'after' row only", m.data)
	}
}

func TestSlotDroppedWhileDisconnectedIsFatal(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	cfg := testConfig(t, dsn, "vanish", decode.TestDecoding)
	cfg.CreateSlot = true
	r := start(t, cfg, true)
	waitActive(t, conn, "vanish")
	// Terminate the walsender and drop the slot before the source reconnects.
	eventually(t, 10*time.Second, "slot dropped", func() bool {
		_, _ = conn.Exec(t.Context(), "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'vanish' AND active")
		_, err := conn.Exec(t.Context(), "SELECT pg_drop_replication_slot('vanish')")
		return err == nil
	})
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run still running 30s after its slot was dropped")
	}
	if r.err == nil || !strings.Contains(r.err.Error(), "no longer exists") {
		t.Fatalf("Run = %v, want a fatal error saying the slot no longer exists", r.err)
	}
	if _, ok := readSlot(t, conn, "vanish"); ok {
		t.Fatal("the source created the dropped slot again; it must not, changes would be skipped")
	}
}
