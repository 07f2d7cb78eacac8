package pipeline

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// TestStreamedTransactions has PostgreSQL stream large transactions
// before they commit (protocol 2, logical_decoding_work_mem at its 64kB
// minimum) and checks what reaches the sink: a committed one whole, in
// order, with a column added halfway; an aborted one not at all; of one
// with a subtransaction rolled back, all but that. The slot statistics
// prove the transactions really were streamed.
func TestStreamedTransactions(t *testing.T) {
	testenv.RequireMajor(t, 14, "streaming of in-progress transactions (pgoutput protocol 2)")
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	ctx := t.Context()
	if _, err := conn.Exec(ctx, "CREATE TABLE big (id int PRIMARY KEY, pad text)"); err != nil {
		t.Fatal(err)
	}
	replConn, err := pgconn.ParseConfig(dsn + " replication=database")
	if err != nil {
		t.Fatal(err)
	}
	replConn.RuntimeParams["logical_decoding_work_mem"] = "64kB"
	slot := testenv.Name(t)
	snk := startLive(t, dsn, Config{
		Source:    source.Config{Conn: replConn, Slot: slot, Plugin: decode.PGOutput, CreateSlot: true},
		Formatter: "CSV", SpoolDir: t.TempDir(),
	})
	testenv.WaitSlotStreaming(t, conn, slot)
	for _, sql := range []string{
		"INSERT INTO big SELECT i, repeat('c', 100) FROM generate_series(1, 3000) i",
		"BEGIN; INSERT INTO big SELECT i, repeat('a', 100) FROM generate_series(3001, 6000) i; ROLLBACK",
		`BEGIN;
		 INSERT INTO big SELECT i, repeat('k', 100) FROM generate_series(6001, 7000) i;
		 SAVEPOINT s1;
		 INSERT INTO big SELECT i, repeat('r', 100) FROM generate_series(7001, 9000) i;
		 ROLLBACK TO s1;
		 ALTER TABLE big ADD COLUMN extra int;
		 INSERT INTO big SELECT i, repeat('z', 100), i FROM generate_series(9001, 10000) i;
		 COMMIT`,
		"INSERT INTO big VALUES (10001, 'last')",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%.60s: %v", sql, err)
		}
	}
	var want []int
	for i := 1; i <= 10001; i++ {
		if (i > 3000 && i <= 6000) || (i > 7000 && i <= 9000) {
			continue
		}
		want = append(want, i)
	}
	got := waitRecords(t, snk, len(want))
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d: aborted changes were published", len(got), len(want))
	}
	xids := map[string]int{}
	for i, r := range got {
		f := strings.Split(r, ",")
		if len(f) != 6 || f[3] != "public.big" || f[4] != "INSERT" || f[5] != fmt.Sprint(want[i]) {
			t.Fatalf("record %d is %q, want the insert of id %d", i, r, want[i])
		}
		xids[f[2]]++
	}
	if len(xids) != 3 {
		t.Errorf("records of %d transactions (%v), want 3", len(xids), xids)
	}
	var streamed int
	if err := conn.QueryRow(ctx, "SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = $1", slot).Scan(&streamed); err != nil {
		t.Fatal(err)
	}
	// PostgreSQL 18 no longer decodes a transaction that has aborted by
	// the time the decoder reaches it: the rolled back one may not be
	// streamed at all there, and nothing of it published either way.
	wantStreamed := 3
	if testenv.ServerMajor(t) >= 18 {
		wantStreamed = 2
	}
	if streamed < wantStreamed {
		t.Errorf("the server streamed %d transactions, want the %d large ones: the test did not exercise streaming", streamed, wantStreamed)
	}
	waitFlushedPast(t, conn, slot)
}

// waitFlushedPast waits until the slot's confirmed position has passed
// every commit so far: the pipeline flushed what it delivered.
func waitFlushedPast(t *testing.T, conn interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, slot string) {
	t.Helper()
	var end string
	if err := conn.QueryRow(t.Context(), "SELECT pg_current_wal_lsn()::text").Scan(&end); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ok bool
		if err := conn.QueryRow(t.Context(), "SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1", slot, end).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %s has not confirmed %s after 20s", slot, end)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
