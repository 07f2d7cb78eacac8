package slotwatch

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// The RDS case, against the heartbeat alone: the slot's database is idle
// while another database of the server writes, and the slot is read by a
// client that confirms only the positions of the messages it receives,
// never the WAL end of a keepalive (as many CDC tools do). Its
// confirmed_flush_lsn stays where it was without the heartbeat, and keeps
// up with the server's WAL with it. (pg2kinesis itself also confirms
// keepalives, so its slot keeps up either way: cmd/pg2kinesis's
// TestIdleSlotKeepsUpWithOtherDatabases.)
func TestHeartbeatAloneAdvancesAnIdleSlot(t *testing.T) {
	testenv.WriteElsewhere(t)

	for _, heartbeat := range []bool{false, true} {
		t.Run(fmt.Sprintf("heartbeat=%t", heartbeat), func(t *testing.T) {
			t.Parallel()
			dsn := testenv.Database(t)
			conn := testenv.Connect(t, dsn)
			slot := testenv.Name(t)
			var start string
			err := conn.QueryRow(t.Context(), "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'test_decoding')", slot).Scan(&start)
			if err != nil {
				t.Fatal(err)
			}
			readOnlyWhatArrives(t, dsn, slot)
			testenv.WaitSlotStreaming(t, conn, slot)
			if heartbeat {
				stop := run(t, New(Config{
					Connect:   func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, dsn) },
					Slot:      slot,
					Heartbeat: 100 * time.Millisecond,
				}))
				defer stop()
			}
			// Three times over, the slot should pass a WAL position the
			// server reached after the client started reading.
			prev := start
			for i := 0; i < 3; i++ {
				time.Sleep(200 * time.Millisecond)
				var target string
				if err := conn.QueryRow(t.Context(), "SELECT pg_current_wal_lsn()::text").Scan(&target); err != nil {
					t.Fatal(err)
				}
				if target == prev {
					t.Fatalf("the server's WAL did not move past %s: the other database is not writing", prev)
				}
				prev = target
				if !heartbeat {
					continue
				}
				waitFor(t, "the idle slot to pass "+target, func() bool { return testenv.SlotPassed(t, conn, slot, target) })
			}
			if !heartbeat {
				if testenv.SlotPassed(t, conn, slot, nextLSN(t, start)) {
					t.Fatalf("the slot moved past its start %s without a heartbeat, although its client confirms only what it receives", start)
				}
			}
		})
	}
}

// readOnlyWhatArrives streams slot in the background, as a client that
// answers every keepalive with the position of the last message it
// received (its start until then) and every 100 ms reports that position
// as flushed. It stops when the test ends.
func readOnlyWhatArrives(t *testing.T, dsn, slot string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	repl, err := pgconn.Connect(ctx, dsn+" replication=database")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := pglogrepl.StartReplication(ctx, repl, slot, 0, pglogrepl.StartReplicationOptions{}); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- confirmReceived(ctx, repl) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("replication client: %v", err)
		}
		repl.Close(context.Background())
	})
}

func confirmReceived(ctx context.Context, repl *pgconn.PgConn) error {
	var received pglogrepl.LSN
	for {
		rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		msg, err := repl.ReceiveMessage(rctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case pgconn.Timeout(err):
		case err != nil:
			return err
		default:
			if cd, ok := msg.(*pgproto3.CopyData); ok && len(cd.Data) > 0 && cd.Data[0] == pglogrepl.XLogDataByteID {
				xld, err := pglogrepl.ParseXLogData(cd.Data[1:])
				if err != nil {
					return err
				}
				received = xld.WALStart
			}
		}
		err = pglogrepl.SendStandbyStatusUpdate(ctx, repl, pglogrepl.StandbyStatusUpdate{WALWritePosition: received})
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
}

// nextLSN is lsn plus one byte.
func nextLSN(t *testing.T, lsn string) string {
	t.Helper()
	l, err := pglogrepl.ParseLSN(lsn)
	if err != nil {
		t.Fatal(err)
	}
	return (l + 1).String()
}
