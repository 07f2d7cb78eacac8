package source

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// BeforeConnect supplies the password of every connection, the first and
// each reconnect, on a copy: the configured Conn never holds it. This is
// the hook an RDS IAM token goes through.
func TestBeforeConnectMakesEachConnectionsPassword(t *testing.T) {
	const password = "hook-pass-4711"
	dsn := testenv.PasswordCluster(t, "wal_level = logical", password)
	admin := testenv.Connect(t, dsn+" password="+password)

	cfg := testConfig(t, dsn, "hooked", decode.TestDecoding)
	cfg.Conn.Password = ""
	cfg.CreateSlot = true
	var calls atomic.Int32
	cfg.BeforeConnect = func(_ context.Context, c *pgconn.Config) error {
		calls.Add(1)
		c.Password = password
		return nil
	}
	r := start(t, cfg, true)
	waitActive(t, admin, "hooked")
	if n := calls.Load(); n != 1 {
		t.Fatalf("BeforeConnect called %d times for one connection", n)
	}
	exec(t, admin, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'hooked'")
	eventually(t, 20*time.Second, "a reconnect through BeforeConnect", func() bool { return calls.Load() >= 2 })
	waitActive(t, admin, "hooked")
	if cfg.Conn.Password != "" {
		t.Fatal("BeforeConnect changed the shared Conn, not a copy")
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// Without the hook's password the same server refuses us, and a hook error
// stops the first connection with the hook's message.
func TestBeforeConnectErrors(t *testing.T) {
	dsn := testenv.PasswordCluster(t, "wal_level = logical", "other-pass")
	cfg := testConfig(t, dsn, "hooked", decode.TestDecoding)
	cfg.Conn.Password = ""
	if err := runOnce(t, cfg); err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("Run without a password = %v, want an authentication error", err)
	}
	cfg.BeforeConnect = func(context.Context, *pgconn.Config) error { return errNoToken }
	if err := runOnce(t, cfg); err == nil || !strings.Contains(err.Error(), errNoToken.Error()) {
		t.Fatalf("Run with a failing hook = %v, want %v", err, errNoToken)
	}
}

var errNoToken = errors.New("no credentials for the token")
