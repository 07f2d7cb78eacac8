package testenv

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Wal2JSONMajor is the only server version the tests have wal2json on:
// Debian's repository serves postgresql-N-wal2json for its own 15 alone,
// and the matrix's other versions (make test-matrix) come from npm
// packages that ship test_decoding and pgoutput only.
const Wal2JSONMajor = 15

var serverVersion struct {
	sync.Mutex
	dsn string
	num int
}

// ServerVersion is the test server's server_version_num (170010 for
// 17.10), read once per PG2KINESIS_TEST_PG_DSN.
func ServerVersion(t testing.TB) int {
	t.Helper()
	serverVersion.Lock()
	defer serverVersion.Unlock()
	dsn := AdminDSN()
	if serverVersion.dsn == dsn {
		return serverVersion.num
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		unavailable(t, "the test Postgres", err)
	}
	defer conn.Close(context.Background())
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version_num").Scan(&v); err != nil {
		t.Fatalf("read the test server's server_version_num: %v", err)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("the test server's server_version_num %q: %v", v, err)
	}
	serverVersion.dsn, serverVersion.num = dsn, n
	return n
}

// ServerMajor is the test server's major version (17 for 17.10).
func ServerMajor(t testing.TB) int {
	t.Helper()
	return ServerVersion(t) / 10000
}

// RequireMajor skips the test, saying why, when the test server is older
// than PostgreSQL major; on major and later it does nothing. The skip is
// the only one the version matrix allows: a feature the server lacks.
func RequireMajor(t testing.TB, major int, why string) {
	t.Helper()
	if have := ServerMajor(t); have < major {
		t.Skipf("PostgreSQL %d: %s needs PostgreSQL %d or later", have, why, major)
	}
}

// RequirePlugin skips the test when plugin is wal2json and the test server
// is not the PostgreSQL 15 that has it (see Wal2JSONMajor); test_decoding
// and pgoutput are on every server.
func RequirePlugin(t testing.TB, plugin string) {
	t.Helper()
	if plugin != "wal2json" {
		return
	}
	if have := ServerMajor(t); have != Wal2JSONMajor {
		t.Skipf("PostgreSQL %d: wal2json is tested on PostgreSQL %d only (Debian's postgresql-%d-wal2json; the other versions' servers come without it)",
			have, Wal2JSONMajor, Wal2JSONMajor)
	}
}

// HasPlugin reports whether the tests have plugin on the test server (see
// RequirePlugin), for a test that compares the plugins it has.
func HasPlugin(t testing.TB, plugin string) bool {
	t.Helper()
	return plugin != "wal2json" || ServerMajor(t) == Wal2JSONMajor
}
