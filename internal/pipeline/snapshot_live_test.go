package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/format"
	"github.com/pg2kinesis/pg2kinesis/internal/snapshot"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// The snapshot's guarantee, for each plugin: with inserts, updates (of the
// key too) and deletes of the same rows going on while the table is read,
// the stream folded by key (a read, insert or update sets the row, a
// delete removes it) equals the table once the stream has caught up: no
// row missing, none resurrected, none stale.
func TestLiveSnapshotFoldsToTheTable(t *testing.T) {
	for _, p := range []decode.Plugin{decode.TestDecoding, decode.Wal2JSON, decode.PGOutput} {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			testenv.RequirePlugin(t, p.String())
			if p == decode.PGOutput {
				testenv.RequireMajor(t, 14, "a snapshot with pgoutput (its watermarks are logical messages, which pgoutput sends from 14 on)")
			}
			dsn := testenv.Database(t)
			conn := testenv.Connect(t, dsn)
			const rows = 20000
			exec(t, conn, "CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL, n int NOT NULL)",
				fmt.Sprintf("INSERT INTO items SELECT i, 'row ' || i, 0 FROM generate_series(1, %d) i", rows))
			if p == decode.PGOutput {
				exec(t, conn, "CREATE PUBLICATION pg2kinesis FOR TABLE items")
			}
			slot := testenv.Name(t)
			snk := startLive(t, dsn, Config{
				Source:    source.Config{Slot: slot, Plugin: p, CreateSlot: true},
				Formatter: format.JSON,
				Connect:   func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, dsn) },
				Snapshot:  SnapshotConfig{Mode: snapshot.Initial, Table: stateTable, ChunkRows: 1000, Poll: 100 * time.Millisecond},
			})
			snapshotUnderWrites(t, conn, slot, func(ctx context.Context) { writeLoop(ctx, t, dsn, rows) })
			checkFoldsToTable(t, snk, conn)
		})
	}
}

// snapshotUnderWrites runs loop, which writes to items until its context
// ends, until the snapshot of items is done, then waits until the stream
// has caught up with every write.
func snapshotUnderWrites(t *testing.T, conn *pgx.Conn, slot string, loop func(ctx context.Context)) {
	t.Helper()
	ctx, stopWrites := context.WithCancel(t.Context())
	var writes sync.WaitGroup
	writes.Add(1)
	go func() {
		defer writes.Done()
		loop(ctx)
	}()
	waitSnapshotDone(t, conn, slot, "items")
	stopWrites()
	writes.Wait()
	waitCaughtUp(t, conn, slot)
}

// checkFoldsToTable checks that snk's records of items, folded by key,
// are the table: no row missing, stale or resurrected.
func checkFoldsToTable(t *testing.T, snk *captureSink, conn *pgx.Conn) {
	t.Helper()
	got := fold(t, snk.snapshot())
	want := tableRows(t, conn)
	if len(got) != len(want) {
		t.Errorf("folded stream has %d rows, the table %d", len(got), len(want))
	}
	for id, row := range want {
		if got[id] != row {
			t.Errorf("row %d: stream %q, table %q", id, got[id], row)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("row %d is in the stream, not in the table (resurrected); its records:\n%s", id, recordsOf(snk.snapshot(), id))
		}
	}
}

var stateTable = catalog.Name{Schema: "public", Table: "pg2kinesis_snapshot"}

func exec(t *testing.T, conn *pgx.Conn, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := conn.Exec(t.Context(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// writeLoop changes random rows until ctx ends: updates, key changes,
// deletes and inserts, one statement per transaction.
func writeLoop(ctx context.Context, t *testing.T, dsn string, rows int) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Error(err)
		return
	}
	defer func() { _ = conn.Close(context.Background()) }()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; ctx.Err() == nil; i++ {
		id := 1 + rng.IntN(rows+rows/10)
		var sql string
		switch k := rng.IntN(10); {
		case k < 4:
			sql = fmt.Sprintf("UPDATE items SET n = n + 1, v = 'changed %d' WHERE id = %d", i, id)
		case k < 6:
			sql = fmt.Sprintf("DELETE FROM items WHERE id = %d", id)
		case k < 7:
			sql = fmt.Sprintf("UPDATE items SET id = %d WHERE id = %d AND NOT EXISTS (SELECT 1 FROM items WHERE id = %d)", id+1, id, id+1)
		default:
			sql = fmt.Sprintf("INSERT INTO items VALUES (%d, 'new %d', 0) ON CONFLICT (id) DO UPDATE SET v = 'again %d'", id, i, i)
		}
		if err := execWhole(ctx, conn, sql); err != nil {
			t.Errorf("%s: %v", sql, err)
			return
		}
	}
}

// execWhole runs a write loop's statement to its end, even once ctx ends
// (it only stops the loop): cut off, the statement could still commit on
// the server after waitCaughtUp's end message, and the table would hold a
// change the stream was not waited for (seen in CI: one row one update
// ahead of the stream).
func execWhole(ctx context.Context, conn *pgx.Conn, sql string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_, err := conn.Exec(ctx, sql)
	return err
}

func waitSnapshotDone(t *testing.T, conn *pgx.Conn, slot, table string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var state string
		err := conn.QueryRow(t.Context(), "SELECT state FROM pg2kinesis_snapshot WHERE slot = $1 AND table_name = $2", slot, table).Scan(&state)
		if err == nil && state == snapshot.Done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot of %s not done after 2 minutes (state %q, %v)", table, state, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitCaughtUp waits until the slot has confirmed everything written so
// far: every change is then acknowledged by the sink.
func waitCaughtUp(t *testing.T, conn *pgx.Conn, slot string) {
	t.Helper()
	// A position to pass: the message's own. Not pg_current_wal_lsn(), the
	// WAL written so far, which with synchronous_commit off can be short
	// of the last commits (it stops at a page's end until the WAL writer
	// catches up): the slot would pass it before the stream has them.
	var end string
	if err := conn.QueryRow(t.Context(), "SELECT pg_logical_emit_message(false, 'test', 'end')::text").Scan(&end); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var ok bool
		err := conn.QueryRow(t.Context(), "SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1", slot, end).Scan(&ok)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %s did not confirm %s within a minute (%v)", slot, end, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fold replays JSON records of items by key (a read, insert or update
// sets the row, a delete or truncate removes it): id -> "v|n".
func fold(t *testing.T, records []string) map[int]string {
	t.Helper()
	rows := map[int]string{}
	for _, r := range records {
		var rec struct {
			Op     string
			Table  string
			PK     struct{ ID int }
			Before *struct{ ID int } // the old key of an update that changed it
			After  *struct {
				ID int
				V  string
				N  int
			}
		}
		if err := json.Unmarshal([]byte(r), &rec); err != nil {
			t.Fatalf("record %s: %v", r, err)
		}
		if rec.Table != "items" {
			continue
		}
		switch rec.Op {
		case "truncate":
			clear(rows)
		case "delete":
			delete(rows, rec.PK.ID)
		case "insert", "update", "read":
			if rec.Before != nil && rec.Before.ID != rec.PK.ID {
				delete(rows, rec.Before.ID) // the key changed: the old row is gone
			}
			rows[rec.PK.ID] = fmt.Sprintf("%s|%d", rec.After.V, rec.After.N)
		default:
			t.Fatalf("unexpected record %s", r)
		}
	}
	return rows
}

func tableRows(t *testing.T, conn *pgx.Conn) map[int]string {
	t.Helper()
	rows, err := conn.Query(t.Context(), "SELECT id, v, n FROM items")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	var id, n int
	var v string
	_, err = pgx.ForEachRow(rows, []any{&id, &v, &n}, func() error {
		out[id] = fmt.Sprintf("%s|%d", v, n)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// recordsOf lists the records of row id, for a failure's message.
func recordsOf(records []string, id int) string {
	var b strings.Builder
	for _, r := range records {
		if strings.Contains(r, fmt.Sprintf(`"id":%d,`, id)) || strings.Contains(r, fmt.Sprintf(`"id":%d}`, id)) {
			b.WriteString(r + "\n")
		}
	}
	return b.String()
}

// initial_only ends the run by itself, cleanly, once every row is
// delivered; a snapshot asked for while a run streams (the state table's
// request) is read without a restart, and again when asked again.
func TestLiveSnapshotInitialOnlyAndRequests(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	exec(t, conn, "CREATE TABLE a (k text PRIMARY KEY)", "INSERT INTO a SELECT 'key ' || i FROM generate_series(1, 2500) i",
		"CREATE TABLE b (x int, y text, PRIMARY KEY (y, x))", "INSERT INTO b SELECT i, 'y' || (i % 7) FROM generate_series(1, 1500) i")
	connect := func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, dsn) }
	snk := &captureSink{}
	cfg := liveConfig(t, dsn, Config{
		Source:    source.Config{Slot: testenv.Name(t), Plugin: decode.TestDecoding, CreateSlot: true},
		Formatter: format.CSV, Connect: connect,
		Snapshot: SnapshotConfig{Mode: snapshot.InitialOnly, Table: stateTable, ChunkRows: 1000, Poll: 100 * time.Millisecond},
	}, snk)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := Run(ctx, cfg); err != nil || ctx.Err() != nil {
		t.Fatalf("initial_only run = %v (context: %v); want it to end by itself", err, ctx.Err())
	}
	if got := countOp(snk.snapshot(), "READ"); got != 4000 {
		t.Fatalf("%d reads, want the 4000 rows", got)
	}

	// A run that snapshots nothing at start serves requests.
	snk2 := &captureSink{}
	cfg.Source.CreateSlot = false
	cfg.Snapshot.Mode = snapshot.Never
	_, stop := startLiveStop(t, dsn, Config{Source: cfg.Source, Formatter: format.CSV, Connect: connect, Snapshot: cfg.Snapshot}, snk2)
	defer stop()
	for round := 1; round <= 2; round++ {
		if err := snapshot.Request(t.Context(), conn, stateTable, cfg.Source.Slot, []catalog.Name{{Schema: "public", Table: "b"}}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for countOp(snk2.snapshot(), "READ") < 1500*round {
			if time.Now().After(deadline) {
				t.Fatalf("request %d: %d reads after a minute, want %d", round, countOp(snk2.snapshot(), "READ"), 1500*round)
			}
			time.Sleep(50 * time.Millisecond)
		}
		waitSnapshotDone(t, conn, cfg.Source.Slot, "b")
	}
	if got := countOp(snk2.snapshot(), "READ"); got != 3000 {
		t.Fatalf("%d reads of b after two requests, want 3000", got)
	}
}

func countOp(records []string, op string) int {
	n := 0
	for _, r := range records {
		if strings.Contains(r, ","+op+",") {
			n++
		}
	}
	return n
}

// A table the run cannot read (no SELECT grant) is recorded as failed,
// with the error, and not read again and again; initial_only ends with an
// error naming it, after the tables it can read are delivered. The role's
// grants are those docs/snapshots.md lists, on a state table made
// beforehand by an administrator (the role cannot create one).
func TestLiveSnapshotFailedTable(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	role := testenv.Name(t)
	exec(t, conn, "CREATE ROLE "+role+" LOGIN REPLICATION",
		"CREATE TABLE open (id int PRIMARY KEY)", "INSERT INTO open SELECT generate_series(1, 300)",
		"CREATE TABLE secret (id int PRIMARY KEY)", "INSERT INTO secret SELECT generate_series(1, 300)",
		"GRANT SELECT ON open TO "+role)
	t.Cleanup(func() {
		admin := testenv.Connect(t, dsn)
		_, _ = admin.Exec(context.Background(), "DROP OWNED BY "+role)
		_, _ = admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
	})
	mine := strings.Replace(dsn, "user=postgres", "user="+role, 1)
	// The state table as an administrator makes it, with the grants the
	// docs give: the role needs no CREATE on the schema.
	admin := testenv.Connect(t, dsn)
	if err := snapshot.CreateState(t.Context(), admin, stateTable); err != nil {
		t.Fatal(err)
	}
	exec(t, conn, "GRANT SELECT, INSERT, UPDATE, DELETE ON pg2kinesis_snapshot TO "+role)
	snk := &captureSink{}
	cfg := liveConfig(t, mine, Config{
		Source:    source.Config{Slot: testenv.Name(t), Plugin: decode.TestDecoding, CreateSlot: true},
		Formatter: format.CSV,
		Connect:   func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, mine) },
		Snapshot:  SnapshotConfig{Mode: snapshot.InitialOnly, Table: stateTable, ChunkRows: 100, Poll: 100 * time.Millisecond},
	}, snk)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	err := Run(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "public.secret") || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("initial_only run = %v; want an error naming public.secret and its cause", err)
	}
	if got := countOp(snk.snapshot(), "READ"); got != 300 {
		t.Fatalf("%d reads, want the 300 rows of open", got)
	}
	var state, cause string
	if err := conn.QueryRow(t.Context(), "SELECT state, error FROM pg2kinesis_snapshot WHERE table_name = 'secret'").Scan(&state, &cause); err != nil || state != snapshot.Failed {
		t.Fatalf("secret's state %q (%v), want failed", state, err)
	}
}
