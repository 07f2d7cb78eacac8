package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// The slot's database is idle while another database of the server
// writes: the RDS case, where a slot that only confirms the changes it
// receives pins the server's WAL. For every plugin, the slot's
// confirmed_flush_lsn keeps up with the server's WAL with the heartbeat
// on, whose messages are decoded (a flush position when nothing is in
// flight) and never published; and, because
// pg2kinesis also confirms the WAL end of the server's keepalives when
// nothing is in flight, it keeps up with the heartbeat off too.
func TestIdleSlotKeepsUpWithOtherDatabases(t *testing.T) {
	t.Parallel()
	ep := testenv.KinesisEndpoint(t)
	testenv.WriteElsewhere(t)

	for _, plugin := range []string{"test_decoding", "wal2json", "pgoutput"} {
		for _, heartbeat := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/heartbeat=%t", plugin, heartbeat), func(t *testing.T) {
				t.Parallel()
				testenv.RequirePlugin(t, plugin)
				if plugin == "pgoutput" && heartbeat {
					testenv.RequireMajor(t, 14, "the heartbeat with pgoutput (its messages are logical messages, which pgoutput sends from 14 on)")
				}
				idleSlotKeepsUp(t, ep, plugin, heartbeat)
			})
		}
	}
}

func idleSlotKeepsUp(t *testing.T, ep, plugin string, heartbeat bool) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	if _, err := conn.Exec(t.Context(), "CREATE TABLE idle (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	stream := testenv.Stream(t, testenv.KinesisClient(t, ep), 1)
	slot := testenv.Name(t)
	args := append(connArgs(t, dsn), "-s", slot, "--create-slot", "--pg-slot-output-plugin", plugin,
		"--kinesis-endpoint", ep, "-k", stream, "--status-interval", "100ms", "--log-level", "debug")
	if heartbeat {
		args = append(args, "--heartbeat-interval", "200ms")
	}
	d := startDaemon(t, args...)
	testenv.WaitSlotStreaming(t, conn, slot)
	reader := readStream(t, ep, stream)
	base := metricsURL(t, d)

	if heartbeat {
		waitFor(t, 30*time.Second, "two heartbeats", func() bool {
			beats, _ := metric(scrape(t, base), "pg2kinesis_heartbeats_total")
			return beats >= 2
		})
	}
	// Three times over, the slot passes a WAL position the server had
	// reached after the daemon started streaming; each is further on than
	// the last, which the other database's writes see to.
	prev := "0/0"
	for i := 0; i < 3; i++ {
		var target string
		// The other database commits asynchronously: its WAL is written
		// by the WAL writer, every 200 ms, so allow it a while to move.
		waitFor(t, 10*time.Second, "the server's WAL to move past "+prev+" (the other database's writes)", func() bool {
			var moved bool
			err := conn.QueryRow(t.Context(), "SELECT pg_current_wal_lsn()::text, pg_current_wal_lsn() > $1::pg_lsn", prev).Scan(&target, &moved)
			if err != nil {
				t.Fatal(err)
			}
			return moved
		})
		prev = target
		waitFor(t, 30*time.Second, "the idle slot to pass "+target, func() bool {
			running(t, d)
			return testenv.SlotPassed(t, conn, slot, target)
		})
	}
	page := scrape(t, base)
	beats, _ := metric(page, "pg2kinesis_heartbeats_total")
	if heartbeat != (beats > 0) {
		t.Fatalf("pg2kinesis_heartbeats_total = %v with the heartbeat %t", beats, heartbeat)
	}
	if n, _ := metric(page, "pg2kinesis_changes_read_total"); n != 0 {
		t.Fatalf("%v changes read from an idle database", n)
	}
	decoded := strings.Contains(d.log(), `msg="logical message (not published)" prefix=pg2kinesis transactional=false`)
	if heartbeat != decoded {
		t.Fatalf("heartbeat %t, but heartbeat messages decoded: %t; log:\n%s", heartbeat, decoded, d.log())
	}
	d.stop(t)
	if recs := reader.snapshot(); len(recs) != 0 {
		t.Fatalf("%d records published from an idle database, the first %q", len(recs), recs[0].Data)
	}
	if strings.Contains(d.log(), "level=WARN") || strings.Contains(d.log(), "level=ERROR") {
		t.Fatalf("warnings in the log:\n%s", d.log())
	}
}
