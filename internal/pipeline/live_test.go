package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// The golden workload run on the local server, streamed through the whole
// pipeline (replication, catalog, decode, format), prints the golden
// records, transaction ids aside.
func TestLiveWorkloadMatchesGolden(t *testing.T) {
	workload, err := os.ReadFile(filepath.Join("testdata", "workload.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range goldenPlugins {
		for _, v := range variants {
			t.Run(p.String()+"/"+v.name, func(t *testing.T) {
				t.Parallel()
				testenv.RequirePlugin(t, p.String())
				golden, err := os.ReadFile(goldenPath(p, v))
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				for _, l := range strings.Split(strings.TrimSuffix(string(golden), "\n"), "\n") {
					want = append(want, l[strings.IndexByte(l, '\t')+1:])
				}
				got := runLive(t, p, v, string(workload), len(want))
				want, got = normaliseXIDs(want), normaliseXIDs(got)
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("live records differ from %s:\n%s", goldenPath(p, v), lineDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
				}
			})
		}
	}
}

// runLive streams workload through Run and returns the first n records,
// and any that arrive shortly after.
func runLive(t *testing.T, p decode.Plugin, v variant, workload string, n int) []string {
	t.Helper()
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	slot := testenv.Name(t)
	snk := startLive(t, dsn, Config{
		Source:    source.Config{Slot: slot, Plugin: p, CreateSlot: true},
		Formatter: v.formatter, FullChange: v.fullChange,
	})
	testenv.WaitSlotStreaming(t, conn, slot)
	if _, err := conn.Exec(t.Context(), workload); err != nil {
		t.Fatalf("workload.sql: %v", err)
	}
	return waitRecords(t, snk, n)
}

// startLive runs the pipeline of cfg on the database of dsn into a
// capturing sink until the test ends. cfg gets the connections, the
// catalog and short intervals.
func startLive(t *testing.T, dsn string, cfg Config) *captureSink {
	t.Helper()
	snk, _ := startLiveStop(t, dsn, cfg, &captureSink{})
	return snk
}

// startLiveStop is startLive into snk, with a stop that ends the run (it
// ends with the test otherwise).
func startLiveStop(t *testing.T, dsn string, cfg Config, snk *captureSink) (_ *captureSink, stop func()) {
	t.Helper()
	cfg = liveConfig(t, dsn, cfg, snk)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return snk, stop
}

// liveConfig is cfg with the connections to dsn, the catalog, short
// intervals and snk.
func liveConfig(t *testing.T, dsn string, cfg Config, snk *captureSink) Config {
	t.Helper()
	replConn, err := pgconn.ParseConfig(dsn + " replication=database")
	if err != nil {
		t.Fatal(err)
	}
	queryConn, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.Conn == nil {
		cfg.Source.Conn = replConn
	}
	cfg.Source.StatusInterval = 100 * time.Millisecond
	cfg.NewSink = func(ack sink.AckFunc) (sink.Sink, error) { snk.ack = ack; return snk, nil }
	if cfg.Keys == nil {
		pg := catalog.NewPG(func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, queryConn) })
		t.Cleanup(pg.Close)
		cfg.Keys = pg
	}
	cfg.PKRefreshInterval = time.Hour
	return cfg
}

// waitRecords waits up to 30 s for n records, then a moment for records
// that should not be there, and returns them all.
func waitRecords(t *testing.T, snk *captureSink, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(snk.snapshot()) < n {
		if time.Now().After(deadline) {
			got := snk.snapshot()
			t.Fatalf("%d of %d records after 30s; the last: %q", len(got), n, got[max(0, len(got)-3):])
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	return snk.snapshot()
}
