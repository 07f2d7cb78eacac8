package slotwatch

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// With HeartbeatConnect (--heartbeat-dsn), the heartbeats go over its
// connection and the samples over Connect's: a slot's server that takes
// no writes (a standby; here, one that refuses connections) does not stop
// the heartbeat on the primary.
func TestHeartbeatConnectIsTheHeartbeatsOwn(t *testing.T) {
	dsn := testenv.Database(t)
	var sampleConns, beatConns, beats atomic.Int64
	stop := run(t, New(Config{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			sampleConns.Add(1)
			return nil, errors.New("the slot's server takes no connection in this test")
		},
		HeartbeatConnect: func(ctx context.Context) (*pgx.Conn, error) {
			beatConns.Add(1)
			return pgx.Connect(ctx, dsn)
		},
		Slot:           testenv.Name(t),
		SampleInterval: 100 * time.Millisecond,
		Heartbeat:      100 * time.Millisecond,
		OnHeartbeat:    func() { beats.Add(1) },
	}))
	waitFor(t, "three heartbeats", func() bool { return beats.Load() >= 3 })
	stop()
	if n := beatConns.Load(); n != 1 {
		t.Errorf("%d connections for the heartbeats, want 1 kept open", n)
	}
	if sampleConns.Load() == 0 {
		t.Error("the samples did not use Connect")
	}
}

// Until Ready is closed no sample is taken (the slot may not exist yet),
// but heartbeats are written: on a standby they are what lets the
// slot's creation end.
func TestReadyHoldsSamplesNotHeartbeats(t *testing.T) {
	dsn := testenv.Database(t)
	var sampleConns, beats atomic.Int64
	ready := make(chan struct{})
	connect := func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, dsn) }
	stop := run(t, New(Config{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			sampleConns.Add(1)
			return connect(ctx)
		},
		HeartbeatConnect: connect,
		Ready:            ready,
		Slot:             testenv.Name(t),
		SampleInterval:   100 * time.Millisecond,
		Heartbeat:        100 * time.Millisecond,
		OnHeartbeat:      func() { beats.Add(1) },
	}))
	defer stop()
	waitFor(t, "three heartbeats", func() bool { return beats.Load() >= 3 })
	if n := sampleConns.Load(); n != 0 {
		t.Fatalf("%d connections for samples before Ready was closed", n)
	}
	close(ready)
	waitFor(t, "a sample after Ready was closed", func() bool { return sampleConns.Load() > 0 })
}

// A --heartbeat-dsn that reaches another database than the slot's gets
// no heartbeat (it would never move the slot) and an error naming both;
// the slot's own database gets them.
func TestHeartbeatConnectOfAnotherDatabase(t *testing.T) {
	slotDSN, otherDSN := testenv.Database(t), testenv.Database(t)
	for _, tc := range []struct {
		name    string
		beatDSN string
		beats   bool
	}{
		{"the slot's database", slotDSN, true},
		{"another database", otherDSN, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var beats atomic.Int64
			logs := &testenv.LogBuffer{}
			stop := run(t, New(Config{
				Connect:          func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, slotDSN) },
				HeartbeatConnect: func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, tc.beatDSN) },
				Slot:             testenv.Name(t),
				SampleInterval:   100 * time.Millisecond,
				Heartbeat:        50 * time.Millisecond,
				OnHeartbeat:      func() { beats.Add(1) },
				Logger:           slog.New(slog.NewTextHandler(logs, nil)),
			}))
			defer stop()
			if tc.beats {
				waitFor(t, "three heartbeats", func() bool { return beats.Load() >= 3 })
				return
			}
			waitFor(t, "the error about --heartbeat-dsn", func() bool {
				return strings.Contains(logs.String(), "--heartbeat-dsn reaches another database than the slot's")
			})
			// Without Ready the check comes before the first heartbeat: none
			// is ever written, however many ticks pass until the stop.
			stop()
			if n := beats.Load(); n != 0 {
				t.Fatalf("%d heartbeats written on another database", n)
			}
			for _, want := range []string{"slot_database=" + dbName(slotDSN), "heartbeat_database=" + dbName(otherDSN)} {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("the error does not name %s:\n%s", want, logs)
				}
			}
		})
	}
}

func dbName(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		panic(err)
	}
	return cfg.Database
}
