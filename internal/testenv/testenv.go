// Package testenv connects tests to the local services that
// scripts/services.sh starts. When a service is missing, a test fails with
// the fix when CI is set, and is skipped otherwise.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultPGDSN is where scripts/services.sh runs Postgres.
const DefaultPGDSN = "host=127.0.0.1 port=55432 user=postgres dbname=postgres sslmode=disable"

// AdminDSN is the DSN of the test server's postgres database, from
// PG2KINESIS_TEST_PG_DSN or the services script's default.
func AdminDSN() string {
	if dsn := os.Getenv("PG2KINESIS_TEST_PG_DSN"); dsn != "" {
		return dsn
	}
	return DefaultPGDSN
}

// unavailable fails the test in CI and skips it elsewhere.
func unavailable(t testing.TB, what string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s is not reachable (%v): start it with `make services`", what, err)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Connect opens a normal connection and closes it when the test ends.
func Connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to test Postgres: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// Name is a unique lower-case identifier for this test, usable as a
// database, slot or stream name.
func Name(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	base := unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(base) > 40 {
		base = base[len(base)-40:]
	}
	return "t_" + strings.Trim(base, "_") + "_" + hex.EncodeToString(b)
}

// Database creates a fresh database for the test and returns its DSN.
// When the test ends, its slots and the database are dropped.
func Database(t testing.TB) (dsn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminDSN())
	if err != nil {
		unavailable(t, "the test Postgres", err)
	}
	defer admin.Close(context.Background())
	name := Name(t)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() { dropDatabase(t, name) })
	cfg, err := pgx.ParseConfig(AdminDSN())
	if err != nil {
		t.Fatalf("parse PG2KINESIS_TEST_PG_DSN: %v", err)
	}
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable",
		cfg.Host, cfg.Port, cfg.User, name)
}

func dropDatabase(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminDSN())
	if err != nil {
		t.Logf("drop test database %s: %v", name, err)
		return
	}
	defer admin.Close(context.Background())
	// A terminated walsender releases its slot a moment later: retry.
	for i := 0; i < 50; i++ {
		for _, sql := range []string{
			"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL",
			"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active",
		} {
			_, _ = admin.Exec(ctx, sql, name)
		}
		var left int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE database = $1", name).Scan(&left); err != nil || left == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// WITH (FORCE) ends the database's sessions, from PostgreSQL 13 on;
	// before, they are terminated first, and the drop retried while a
	// terminated one is still going.
	var version int
	if err := admin.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		t.Logf("drop test database %s: read the server version: %v", name, err)
		return
	}
	if version >= 130000 {
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
		return
	}
	for i := 0; ; i++ {
		_, _ = admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
		_, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name)
		if err == nil {
			return
		}
		if i == 50 {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitSlotStreaming waits until slot is in use and has reached its
// consistent point: a slot being created is active before that, and
// changes committed before it are, by design, not decoded.
func WaitSlotStreaming(t testing.TB, conn *pgx.Conn, slot string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		err := conn.QueryRow(context.Background(),
			"SELECT active AND confirmed_flush_lsn IS NOT NULL FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&ok)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %s is not streaming after 30s (last error: %v)", slot, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SlotPassed reports whether slot's confirmed_flush_lsn is at or past lsn.
func SlotPassed(t testing.TB, conn *pgx.Conn, slot, lsn string) bool {
	t.Helper()
	var ok bool
	err := conn.QueryRow(context.Background(),
		"SELECT confirmed_flush_lsn >= $1::pg_lsn FROM pg_replication_slots WHERE slot_name = $2", lsn, slot).Scan(&ok)
	if err != nil {
		t.Fatalf("read slot %s's confirmed_flush_lsn: %v", slot, err)
	}
	return ok
}
