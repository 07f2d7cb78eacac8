package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/catalog/catalogtest"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/filter"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// A table created after the start makes the handler reload the primary
// keys; when that reload cannot reach Postgres (twice here), the pipeline
// reconnects and reads the changes again instead of stopping, and every
// change arrives.
func TestKeyReloadFailureReconnects(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	queryConn, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pg := catalog.NewPG(func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, queryConn) })
	defer pg.Close()
	var loads atomic.Int32
	keys := catalogtest.Loader(func(ctx context.Context) (catalog.Keys, error) {
		if n := loads.Add(1); n == 2 || n == 3 { // the first is the start's
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
		}
		return pg.Load(ctx)
	})
	slot := testenv.Name(t)
	logs := &testenv.LogBuffer{}
	snk := startLive(t, dsn, Config{
		Source:    source.Config{Slot: slot, Plugin: decode.TestDecoding, CreateSlot: true},
		Formatter: "CSV", Keys: keys, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	testenv.WaitSlotStreaming(t, conn, slot)
	for _, sql := range []string{
		"CREATE TABLE late (id int PRIMARY KEY)",
		"INSERT INTO late VALUES (1), (2)",
		"INSERT INTO late VALUES (3)",
	} {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	got := waitRecords(t, snk, 3)
	seen := map[string]bool{}
	for _, r := range got {
		f := strings.Split(r, ",")
		if len(f) != 6 || f[3] != "public.late" || f[4] != "INSERT" {
			t.Fatalf("record %q, want an insert into public.late", r)
		}
		seen[f[5]] = true
	}
	if len(seen) != 3 || loads.Load() < 4 {
		t.Fatalf("ids %v after %d key loads, want 1, 2 and 3 after at least 4", seen, loads.Load())
	}
	// Nothing was delivered between the two failures: the second waits
	// longer (the backoff grows, from 250-500 ms to 500-1000 ms).
	var waits []time.Duration
	for _, m := range retryIn.FindAllStringSubmatch(logs.String(), -1) {
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, d)
	}
	if len(waits) != 2 || waits[1] < waits[0] || waits[1] < 500*time.Millisecond {
		t.Fatalf("waits %v before reconnecting, want two, growing; log:\n%s", waits, logs.String())
	}
}

var retryIn = regexp.MustCompile(`msg="cannot handle a change for now; reconnecting to read it again" .*retry_in=(\S+)`)

// Only a failure that a new connection may not meet is retried: a
// refused permission stops the run, as before.
func TestKeyReloadErrorsRetried(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		retry bool
	}{
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{"shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"timeout", context.DeadlineExceeded, true},
		{"permission", &pgconn.PgError{Code: "42501"}, false},
		{"password", &pgconn.PgError{Code: "28P01"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _ := testHandler(t, &captureSink{}, filter.New(nil, nil), Config{})
			h.keys = catalog.New(catalogtest.Loader(func(context.Context) (catalog.Keys, error) { return nil, tc.err }), nil)
			if err := feed(t, h, 1, "BEGIN 7"); err != nil {
				t.Fatal(err)
			}
			err := feed(t, h, 2, "table public.other: INSERT: id[integer]:1")
			var re *source.RetryError
			if err == nil || errors.As(err, &re) != tc.retry || !strings.Contains(err.Error(), "public.other") {
				t.Fatalf("HandleData = %v; want an error naming the table, retried: %t", err, tc.retry)
			}
		})
	}
}
