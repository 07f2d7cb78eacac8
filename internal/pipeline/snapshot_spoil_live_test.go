package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/format"
	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
	"github.com/pg2kinesis/pg2kinesis/internal/snapshot"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// Truncates while a table is snapshotted spoil the chunks whose windows
// they fall in, and a worker reads the next chunk while the stream places
// one: a spoiled chunk's successor, already read, is dropped and both are
// read again. The folded stream still equals the table.
func TestLiveSnapshotSpoiledChunksFoldToTheTable(t *testing.T) {
	t.Parallel()
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	const rows = 5000
	exec(t, conn, "CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL, n int NOT NULL)",
		fmt.Sprintf("INSERT INTO items SELECT i, 'row ' || i, 0 FROM generate_series(1, %d) i", rows))
	slot := testenv.Name(t)
	m := metrics.New("", "")
	snk := startLive(t, dsn, Config{
		Source:    source.Config{Slot: slot, Plugin: decode.TestDecoding, CreateSlot: true},
		Formatter: format.JSON, Metrics: m,
		Connect:  func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, dsn) },
		Snapshot: SnapshotConfig{Mode: snapshot.Initial, Table: stateTable, ChunkRows: 200, Poll: 100 * time.Millisecond},
	})
	chunks := m.Snapshot.Table("public", "items").Chunks
	snapshotUnderWrites(t, conn, slot, func(ctx context.Context) { truncateLoop(ctx, t, dsn, rows, chunks) })
	// Whether a truncate fell in a window is up to timing: said, not
	// required.
	t.Logf("%v chunks spoiled", value(t, m, "pg2kinesis_snapshot_chunks_spoiled_total", ""))
	checkFoldsToTable(t, snk, conn)
}

// truncateLoop updates rows until ctx ends, and three times empties the
// table and fills it again, in one transaction, each time once two more
// chunks are placed: a truncate in every window would spoil every chunk.
func truncateLoop(ctx context.Context, t *testing.T, dsn string, rows int, chunks prometheus.Counter) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Error(err)
		return
	}
	defer func() { _ = conn.Close(context.Background()) }()
	truncates, placed := 0, 0.0
	for i := 1; ctx.Err() == nil; i++ {
		sqls := []string{fmt.Sprintf("UPDATE items SET n = n + 1 WHERE id = %d", 1+i*7%rows)}
		if n := testutil.ToFloat64(chunks); truncates < 3 && n >= placed+2 {
			truncates, placed = truncates+1, n
			sqls = append(sqls, fmt.Sprintf("BEGIN; TRUNCATE items; INSERT INTO items SELECT i, 'gen %d', %d FROM generate_series(1, %d) i; COMMIT", i, i, rows))
		}
		for _, sql := range sqls {
			if err := execWhole(ctx, conn, sql); err != nil {
				t.Errorf("%s: %v", sql, err)
				return
			}
		}
	}
}
