package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	dto "github.com/prometheus/client_model/go"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/format"
	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/snapshot"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// A snapshot shows while it runs: held in the middle (the sink stops
// taking records), its table is in /readyz's details and in a progress
// line; once delivered, its metrics count the table's rows and chunks and
// its state is done.
func TestLiveSnapshotIsVisible(t *testing.T) {
	t.Parallel()
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	const rows, chunk = 5000, 1000
	exec(t, conn, "CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL, n int NOT NULL)",
		fmt.Sprintf("INSERT INTO items SELECT i, 'row ' || i, 0 FROM generate_series(1, %d) i", rows),
		"ANALYZE items")
	m := metrics.New("", "")
	var logs testenv.LogBuffer
	srv, err := metrics.Listen("127.0.0.1:0", m, time.Minute, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stopServer := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Run(ctx) }()
	t.Cleanup(func() {
		stopServer()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	// The sink holds the stream in the fourth chunk: three are placed,
	// the worker waits for the fourth. A table's chunks are of 100 rows
	// first, then of at most four times the chunk before, up to chunk:
	// with one reader (two would cut the table into spans by a sample).
	var placed int
	for i, n := 0, 100; i < 3; i, n = i+1, min(4*n, chunk) {
		placed += n
	}
	snk := &gateSink{hold: placed + chunk/2, release: make(chan struct{})}
	slot := testenv.Name(t)
	replConn, err := pgconn.ParseConfig(dsn + " replication=database")
	if err != nil {
		t.Fatal(err)
	}
	keys := catalog.NewPG(func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, dsn) })
	t.Cleanup(keys.Close)
	runCtx, stopRun := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() {
		ran <- Run(runCtx, Config{
			Source: source.Config{Conn: replConn, Slot: slot, Plugin: decode.TestDecoding, CreateSlot: true,
				StatusInterval: 100 * time.Millisecond},
			NewSink: func(ack sink.AckFunc) (sink.Sink, error) { snk.ack = ack; return snk, nil },
			Keys:    keys, PKRefreshInterval: time.Hour,
			Formatter: format.JSON,
			Connect:   func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, dsn) },
			Snapshot:  SnapshotConfig{Mode: snapshot.Initial, Table: stateTable, ChunkRows: chunk, Workers: 1, Poll: 100 * time.Millisecond},
			Metrics:   m, Server: srv, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			ProgressInterval: 20 * time.Millisecond,
		})
	}()
	released := sync.OnceFunc(func() { close(snk.release) })
	t.Cleanup(func() {
		released()
		stopRun()
		if err := <-ran; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	base := "http://" + srv.Addr()

	percent := 100 * float64(placed) / rows
	want := fmt.Sprintf("snapshot of public.items: running, %d rows published of about %d (%.1f%%)", placed, rows, percent)
	waitUntil(t, "/readyz to show the snapshot held at 3 chunks", func() (bool, string) {
		_, body := httpBody(t, base+"/readyz")
		return strings.Contains(body, want), body
	})
	line := fmt.Sprintf(`msg="snapshot progress" table=public.items rows=%d estimate=%d percent=%g `, placed, rows, percent)
	waitUntil(t, "a progress line of the snapshot", func() (bool, string) {
		l := logs.String()
		return strings.Contains(l, line), l
	})
	if v := value(t, m, "pg2kinesis_snapshot_state", "running"); v != 1 {
		t.Errorf("pg2kinesis_snapshot_state{state=running} = %v while it runs, want 1", v)
	}
	released()

	waitSnapshotDone(t, conn, slot, "items")
	waitUntil(t, "the snapshot's state to be done", func() (bool, string) {
		v := value(t, m, "pg2kinesis_snapshot_state", "done")
		return v == 1, fmt.Sprint(v)
	})
	for name, want := range map[string]float64{
		"pg2kinesis_snapshot_rows_published_total": rows,
		"pg2kinesis_snapshot_rows_dropped_total":   0,
		"pg2kinesis_snapshot_rows_estimated":       rows,
	} {
		if got := value(t, m, name, ""); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := value(t, m, "pg2kinesis_snapshot_state", "running"); got != 0 {
		t.Errorf("pg2kinesis_snapshot_state{state=running} = %v once done, want 0", got)
	}
	// Chunks read again (none expected, but not ruled out) are read and
	// counted as spoiled, not placed.
	read, spoiled := value(t, m, "pg2kinesis_snapshot_rows_read_total", ""), value(t, m, "pg2kinesis_snapshot_chunks_spoiled_total", "")
	if read < rows || (read > rows && spoiled == 0) {
		t.Errorf("pg2kinesis_snapshot_rows_read_total = %v with %v chunks spoiled, want %d and more only for spoiled ones", read, spoiled, rows)
	}
	if got := value(t, m, "pg2kinesis_snapshot_chunks_total", ""); got < rows/chunk {
		t.Errorf("pg2kinesis_snapshot_chunks_total = %v, want at least %d", got, rows/chunk)
	}
	for _, name := range []string{"pg2kinesis_snapshot_wait_seconds_total", "pg2kinesis_snapshot_read_seconds_total"} {
		if got := value(t, m, name, ""); got <= 0 {
			t.Errorf("%s = %v, want more than 0", name, got)
		}
	}
	if _, body := httpBody(t, base+"/readyz"); !strings.Contains(body, "\nsnapshots: 1 done\n") {
		t.Errorf("/readyz once done: %q", body)
	}
}

// gateSink is a captureSink that holds the record numbered hold (from 0)
// until release is closed.
type gateSink struct {
	captureSink
	hold    int
	n       int // the stream's goroutine's alone
	release chan struct{}
}

func (s *gateSink) Put(ctx context.Context, r sink.Record) error {
	if s.n == s.hold {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.n++
	return s.captureSink.Put(ctx, r)
}

// value is the public.items series of a snapshot metric (of state, for
// pg2kinesis_snapshot_state).
func value(t *testing.T, m *metrics.Metrics, name, state string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			if label(s, "table") == "public.items" && label(s, "state") == state {
				return s.GetCounter().GetValue() + s.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func httpBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// waitUntil polls ok for up to a minute; it returns what to show if not.
func waitUntil(t *testing.T, what string, ok func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		done, last := ok()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within a minute; last:\n%s", what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
