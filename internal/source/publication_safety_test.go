package source

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// noPublication fails if the database has any publication.
func noPublication(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	var names []string
	rows, err := conn.Query(t.Context(), "SELECT pubname FROM pg_publication")
	if err == nil {
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(names) > 0 {
		t.Errorf("publications left behind: %q", names)
	}
}

// appUpdates fails unless the application can still update and delete
// the rows of each table (Postgres refuses that once a publication covers
// a table without a replica identity).
func appUpdates(t *testing.T, conn *pgx.Conn, tables ...string) {
	t.Helper()
	for _, tbl := range tables {
		for _, sql := range []string{"UPDATE " + tbl + " SET v = v + 1", "DELETE FROM " + tbl} {
			if _, err := conn.Exec(t.Context(), sql); err != nil {
				t.Errorf("the application's %q fails: %v", sql, err)
			}
		}
	}
}

// A start that fails on the slot creates no publication: the
// application's UPDATE on a keyless table goes on working.
func TestFailedStartCreatesNoPublication(t *testing.T) {
	for _, tc := range []struct {
		name, setup, want string
	}{
		{"missing slot", "", "--create-slot"},
		{"slot of another plugin", "SELECT pg_create_logical_replication_slot('failstart', 'test_decoding')", `uses output plugin "test_decoding"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := testenv.Database(t)
			conn := testenv.Connect(t, dsn)
			exec(t, conn, "CREATE TABLE nokey (v int); INSERT INTO nokey VALUES (1); CREATE TABLE keyed (id int PRIMARY KEY, v int)")
			if tc.setup != "" {
				exec(t, conn, tc.setup)
			}
			err := runOnce(t, testConfig(t, dsn, "failstart", decode.PGOutput))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error with %q", err, tc.want)
			}
			noPublication(t, conn)
			appUpdates(t, conn, "nokey")
		})
	}
}

// A start that would publish a table without a usable replica identity
// creates nothing and names the tables and the fix, as a SetupError
// (exit 2); tables whose identity Postgres accepts are not named.
func TestKeylessTablesRefused(t *testing.T) {
	const ok = "CREATE TABLE keyed (id int PRIMARY KEY, v int); " +
		"CREATE TABLE full_ri (v int); ALTER TABLE full_ri REPLICA IDENTITY FULL; " +
		"CREATE TABLE by_index (id int NOT NULL, v int); CREATE UNIQUE INDEX by_index_id ON by_index (id); " +
		"ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_id; " +
		"CREATE UNLOGGED TABLE unlogged (v int); "
	for _, tc := range []struct {
		name, setup string
		pick        func(schema, table string) bool
		want        []string // tables named
	}{
		{"no key", "CREATE TABLE nokey (v int)", nil, []string{"public.nokey"}},
		{"identity nothing", "CREATE TABLE nothing (id int PRIMARY KEY, v int); ALTER TABLE nothing REPLICA IDENTITY NOTHING", nil, []string{"public.nothing"}},
		{"index dropped", "CREATE TABLE lost (id int NOT NULL, v int); CREATE UNIQUE INDEX lost_id ON lost (id); " +
			"ALTER TABLE lost REPLICA IDENTITY USING INDEX lost_id; DROP INDEX lost_id", nil, []string{"public.lost"}},
		{"deferrable key", "CREATE TABLE deferred (id int PRIMARY KEY DEFERRABLE, v int)", nil, []string{"public.deferred"}},
		{"quoted names", `CREATE SCHEMA "S"; CREATE TABLE "S"."No Key" (v int)`, nil, []string{`"S"."No Key"`}},
		// Postgres checks the partition an UPDATE touches, so a parent
		// picked by the pattern brings its keyless partitions along.
		{"partition of a picked parent", "CREATE TABLE parted (id int, v int) PARTITION BY RANGE (id); " +
			"CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100)",
			func(_, table string) bool { return table == "parted" }, []string{"public.parted_1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := testenv.Database(t)
			conn := testenv.Connect(t, dsn)
			exec(t, conn, ok+tc.setup)
			cfg := testConfig(t, dsn, "keyless", decode.PGOutput)
			cfg.CreateSlot, cfg.PublicationTables = true, tc.pick
			err := runOnce(t, cfg)
			var se *SetupError
			if !errors.As(err, &se) {
				t.Fatalf("Run = %v, want a SetupError", err)
			}
			for _, w := range append(tc.want, "REPLICA IDENTITY FULL", "--publication-tables-from-pattern") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, fine := range []string{"keyed", "full_ri", "by_index", "unlogged"} {
				if strings.Contains(err.Error(), "public."+fine) {
					t.Errorf("error %q names %s, whose updates Postgres allows", err, fine)
				}
			}
			noPublication(t, conn)
			if _, ok := readSlot(t, conn, "keyless"); ok {
				t.Error("a slot was created")
			}
		})
	}
}

// The application's UPDATE on a keyless table works after a refused start
// (the table has rows: Postgres checks at the first row it changes).
func TestRefusedStartKeepsApplicationWorking(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	exec(t, conn, "CREATE TABLE nokey (v int); INSERT INTO nokey VALUES (1)")
	cfg := testConfig(t, dsn, "refused", decode.PGOutput)
	cfg.CreateSlot = true
	if err := runOnce(t, cfg); err == nil {
		t.Fatal("Run = nil, want the start refused")
	}
	appUpdates(t, conn, "nokey")
}

// With the publication made from the pattern, a keyless table the pattern
// excludes is not published, and the start goes on.
func TestPatternExcludingKeylessStarts(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	exec(t, conn, "CREATE TABLE nokey (v int); INSERT INTO nokey VALUES (1); CREATE TABLE keyed (id int PRIMARY KEY, v int)")
	cfg := testConfig(t, dsn, "excl", decode.PGOutput)
	cfg.CreateSlot, cfg.PublicationTables = true, func(_, table string) bool { return table == "keyed" }
	start(t, cfg, true)
	waitActive(t, conn, "excl")
	if got := publicationTables(t, conn, "pg2kinesis"); !slices.Equal(got, []string{"public.keyed"}) {
		t.Fatalf("publication covers %q, want public.keyed", got)
	}
	appUpdates(t, conn, "nokey")
}

// A publication the user made is used as it is, keyless tables or not:
// it is the user's business.
func TestUserPublicationUsedWithKeylessTables(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	exec(t, conn, "CREATE TABLE nokey (v int); CREATE PUBLICATION mine FOR ALL TABLES")
	cfg := testConfig(t, dsn, "users", decode.PGOutput)
	cfg.CreateSlot, cfg.Publication = true, "mine"
	start(t, cfg, true)
	waitActive(t, conn, "users")
}

// A run stopped before it streamed removes the publication it created
// (and only that one): here the slot's creation waits for a transaction
// that stays open, and the run is stopped meanwhile.
func TestStoppedStartRemovesItsPublication(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	exec(t, conn, "CREATE TABLE keyed (id int PRIMARY KEY, v int); CREATE PUBLICATION other FOR TABLE keyed")
	open := testenv.Connect(t, dsn)
	tx, err := open.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(t.Context(), "INSERT INTO keyed VALUES (1, 1)"); err != nil { // takes an xid
		t.Fatal(err)
	}
	cfg := testConfig(t, dsn, "stopped", decode.PGOutput)
	cfg.CreateSlot = true
	r := start(t, cfg, true)
	eventually(t, 10*time.Second, "the publication created", func() bool {
		var n int
		return conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_publication WHERE pubname = 'pg2kinesis'").Scan(&n) == nil && n == 1
	})
	if err := r.stop(t); err != nil {
		t.Fatalf("Run after a stop = %v, want nil", err)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	var pubs []string
	rows, err := conn.Query(t.Context(), "SELECT pubname FROM pg_publication")
	if err == nil {
		pubs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil || !slices.Equal(pubs, []string{"other"}) {
		t.Fatalf("publications after the stopped start: %q (%v), want only the user's \"other\"", pubs, err)
	}
	if _, ok := readSlot(t, conn, "stopped"); ok {
		t.Error("a slot is left behind")
	}
}

// A publication dropped under a running daemon stops it with an error
// that says the slot must be recreated, not a reconnect loop.
func TestPublicationDroppedWhileStreaming(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	exec(t, conn, "CREATE TABLE keyed (id int PRIMARY KEY, v int)")
	cfg := testConfig(t, dsn, "dropped", decode.PGOutput)
	cfg.CreateSlot = true
	r := start(t, cfg, true)
	waitActive(t, conn, "dropped")
	exec(t, conn, "DROP PUBLICATION pg2kinesis")
	exec(t, conn, "INSERT INTO keyed VALUES (1, 1)")
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run still running 30s after its publication was dropped")
	}
	for _, w := range []string{`publication "pg2kinesis" does not exist`, "--recreate-slot", "catalog as it was at each change"} {
		if r.err == nil || !strings.Contains(r.err.Error(), w) {
			t.Errorf("Run = %v, want an error with %q", r.err, w)
		}
	}
	if classify(r.err) != kindFatal {
		t.Errorf("classify(%v) = %d, want fatal", r.err, classify(r.err))
	}
}

// What a run that ends removes of what it created: everything when it
// failed before it streamed; when stopped before it streamed, only a
// publication that no slot of its needs; nothing once it streamed.
func TestUndoOnlyWhatNoChangeNeeds(t *testing.T) {
	failed := errors.New("fatal")
	for _, tc := range []struct {
		streamed    bool
		err         error
		createdSlot bool
		want        bool
	}{
		{false, failed, true, true},
		{false, failed, false, true},
		{false, nil, false, true},
		{false, nil, true, false}, // stopped after the slot was made: the next start streams from it
		{true, nil, true, false},
		{true, failed, true, false},
	} {
		if got := undo(tc.streamed, tc.err, tc.createdSlot); got != tc.want {
			t.Errorf("undo(streamed %t, err %v, created slot %t) = %t, want %t", tc.streamed, tc.err, tc.createdSlot, got, tc.want)
		}
	}
}

// Only pgoutput's missing publication gets the advice to recreate the
// slot: another undefined object (42704) is a different fault, and must
// not send the user to drop the slot's changes.
func TestMissingPublicationOnlyForPublications(t *testing.T) {
	pubGone := &pgconn.PgError{Code: "42704", Message: `publication "pg2kinesis" does not exist`}
	for _, tc := range []struct {
		name   string
		plugin decode.Plugin
		err    error
		advice bool
	}{
		{"pgoutput's missing publication", decode.PGOutput, fmt.Errorf("replication stream: %w", pubGone), true},
		{"a missing type", decode.PGOutput, &pgconn.PgError{Code: "42704", Message: `type "foo" does not exist`}, false},
		{"a missing slot", decode.PGOutput, &pgconn.PgError{Code: "42704", Message: `replication slot "s" does not exist`}, false},
		{"another plugin", decode.Wal2JSON, pubGone, false},
		{"another code", decode.PGOutput, &pgconn.PgError{Code: "42P01", Message: `publication-ish relation does not exist`}, false},
		{"no error", decode.PGOutput, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{Plugin: tc.plugin, Slot: "s", Publication: "pg2kinesis"})
			got := s.missingPublication(tc.err)
			if advised := got != nil && strings.Contains(got.Error(), "--recreate-slot"); advised != tc.advice {
				t.Fatalf("missingPublication(%v) = %v, advice %v, want %v", tc.err, got, advised, tc.advice)
			}
			if !tc.advice && got != tc.err {
				t.Errorf("missingPublication(%v) = %v, want the error passed on as it is", tc.err, got)
			}
			if tc.advice && (classify(got) != kindFatal || !errors.Is(got, pubGone)) {
				t.Errorf("missingPublication(%v) = %v, want a fatal error wrapping the server's", tc.err, got)
			}
		})
	}
}

// PostgreSQL 18 warns where it failed before: only its warning of a
// skipped publication, and only with pgoutput, stops the run, with the
// advice the error got.
func TestSkippedPublicationWarning(t *testing.T) {
	skipped := &pgproto3.NoticeResponse{Severity: "WARNING", Code: "55000", Message: `skipped loading publication "pg2kinesis"`,
		Detail: "The publication does not exist at this point in the WAL."}
	for _, tc := range []struct {
		name   string
		plugin decode.Plugin
		notice *pgproto3.NoticeResponse
		stops  bool
	}{
		{"pgoutput's skipped publication", decode.PGOutput, skipped, true},
		{"another warning", decode.PGOutput, &pgproto3.NoticeResponse{Severity: "WARNING", Code: "01000", Message: "something else"}, false},
		{"another plugin", decode.TestDecoding, skipped, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{Plugin: tc.plugin, Slot: "s", Publication: "pg2kinesis"})
			err := s.skippedPublication(tc.notice)
			if stops := err != nil; stops != tc.stops {
				t.Fatalf("skippedPublication = %v, want stopping %t", err, tc.stops)
			}
			if tc.stops && (classify(err) != kindFatal || !strings.Contains(err.Error(), "--recreate-slot") ||
				!strings.Contains(err.Error(), `publication "pg2kinesis" does not exist`)) {
				t.Errorf("skippedPublication = %v, want a fatal error with the advice", err)
			}
		})
	}
}
