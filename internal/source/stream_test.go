package source

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

func TestStreamsInserts(t *testing.T) {
	for _, tc := range []struct {
		plugin decode.Plugin
		want   []string // in order, each in its own message
	}{
		{decode.TestDecoding, []string{
			"BEGIN ",
			"table public.items: INSERT: id[integer]:1 name[text]:'one'",
			"table public.items: INSERT: id[integer]:2 name[text]:'two, \"2\"'",
			"COMMIT ",
		}},
		{decode.Wal2JSON, []string{
			`"action":"B"`,
			`"action":"I","xid":`,
			`"table":"items","columns":[{"name":"id","type":"integer","value":2}`,
			`"action":"C"`,
		}},
	} {
		t.Run(tc.plugin.String(), func(t *testing.T) {
			testenv.RequirePlugin(t, tc.plugin.String())
			dsn := testenv.Database(t)
			conn := testenv.Connect(t, dsn)
			exec(t, conn, "CREATE TABLE items (id int PRIMARY KEY, name text)")
			cfg := testConfig(t, dsn, "ins", tc.plugin)
			cfg.CreateSlot = true
			r := start(t, cfg, true)
			waitActive(t, conn, "ins")
			exec(t, conn, `INSERT INTO items VALUES (1, 'one'), (2, 'two, "2"')`)
			for _, want := range tc.want {
				r.rec.next(t, want, 10*time.Second)
			}
		})
	}
}

// The slot's confirmed_flush_lsn moves to what the source is told, and
// never further, however much it has streamed.
func TestFlushOnlyWhatTold(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	exec(t, conn, "CREATE TABLE items (id int PRIMARY KEY)")
	cfg := testConfig(t, dsn, "told", decode.TestDecoding)
	cfg.CreateSlot = true
	r := start(t, cfg, false)
	waitActive(t, conn, "told")
	before, _ := readSlot(t, conn, "told")

	exec(t, conn, "INSERT INTO items VALUES (1)")
	exec(t, conn, "INSERT INTO items VALUES (2)")
	first := r.rec.next(t, "COMMIT", 10*time.Second)
	second := r.rec.next(t, "COMMIT", 10*time.Second)
	time.Sleep(10 * cfg.StatusInterval) // many status updates go out meanwhile
	if got, _ := readSlot(t, conn, "told"); got.confirmed != before.confirmed {
		t.Fatalf("confirmed_flush_lsn moved from %s to %s without a Raise of the position", before.confirmed, got.confirmed)
	}

	r.src.cfg.Position.Raise(first.lsn) // delivered up to the first commit
	eventually(t, 10*time.Second, "confirmed_flush_lsn to reach the flushed LSN", func() bool {
		got, _ := readSlot(t, conn, "told")
		if got.confirmed > first.lsn {
			t.Fatalf("confirmed_flush_lsn %s passed the flushed %s (second commit at %s)", got.confirmed, first.lsn, second.lsn)
		}
		return got.confirmed == first.lsn
	})
	time.Sleep(10 * cfg.StatusInterval)
	if got, _ := readSlot(t, conn, "told"); got.confirmed != first.lsn {
		t.Fatalf("confirmed_flush_lsn = %s, want it to stay at %s", got.confirmed, first.lsn)
	}
}

var rowID = regexp.MustCompile(`id\[integer\]:(\d+)`)

// Terminating the walsender mid-stream loses nothing: the source reconnects
// and resumes from the slot, re-sending what was not flushed.
func TestReconnectAfterTerminate(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	exec(t, conn, "CREATE TABLE items (id int PRIMARY KEY)")
	cfg := testConfig(t, dsn, "recon", decode.TestDecoding)
	cfg.CreateSlot = true
	r := start(t, cfg, true)
	waitActive(t, conn, "recon")

	const n = 200
	seen := map[int]bool{}
	collect := func(upTo int) {
		deadline := time.After(20 * time.Second)
		for !seen[upTo] {
			select {
			case m := <-r.rec.msgs:
				if sub := rowID.FindStringSubmatch(m.data); sub != nil {
					id, _ := strconv.Atoi(sub[1])
					seen[id] = true
				}
			case <-deadline:
				t.Fatalf("row %d not streamed within 20s", upTo)
			}
		}
	}
	for i := 1; i <= n/2; i++ {
		exec(t, conn, "INSERT INTO items VALUES ($1)", i)
	}
	collect(n / 2)
	var pid int
	if err := conn.QueryRow(t.Context(), "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'recon'").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	exec(t, conn, "SELECT pg_terminate_backend($1)", pid)
	for i := n/2 + 1; i <= n; i++ {
		exec(t, conn, "INSERT INTO items VALUES ($1)", i)
	}
	collect(n)
	for i := 1; i <= n; i++ {
		if !seen[i] {
			t.Errorf("row %d was lost across the reconnect", i)
		}
	}
	var newPID int
	if err := conn.QueryRow(t.Context(), "SELECT coalesce(active_pid, 0) FROM pg_replication_slots WHERE slot_name = 'recon'").Scan(&newPID); err != nil {
		t.Fatal(err)
	}
	if newPID == pid || newPID == 0 {
		t.Fatalf("walsender pid %d after reconnect, want a new one (old %d)", newPID, pid)
	}
}

// A second source on a held slot stands by, and takes over once the first
// one stops.
func TestStandbyTakesOver(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	exec(t, conn, "CREATE TABLE items (id int PRIMARY KEY)")
	cfg := testConfig(t, dsn, "shared", decode.TestDecoding)
	cfg.CreateSlot = true
	active := start(t, cfg, true)
	waitActive(t, conn, "shared")
	standby := start(t, cfg, true)

	exec(t, conn, "INSERT INTO items VALUES (1)")
	active.rec.next(t, "id[integer]:1", 10*time.Second)
	active.rec.next(t, "COMMIT", 10*time.Second) // flushed: the standby starts after it
	time.Sleep(time.Second)                      // the standby retries every 100ms meanwhile
	select {
	case m := <-standby.rec.msgs:
		t.Fatalf("standby streamed %q while the slot was held", m.data)
	default:
	}
	select {
	case <-standby.done:
		t.Fatalf("standby exited while waiting for the slot: %v", standby.err)
	default:
	}

	if err := active.stop(t); err != nil {
		t.Fatalf("active Run = %v", err)
	}
	exec(t, conn, "INSERT INTO items VALUES (2)")
	m := standby.rec.next(t, "table public.items: INSERT:", 15*time.Second)
	if m.data != fmt.Sprintf("table public.items: INSERT: id[integer]:%d", 2) {
		t.Fatalf("standby's first change = %q, want row 2 (row 1 was flushed by the active one)", m.data)
	}
}

// With a status interval far longer than wal_sender_timeout, only replies to
// the server's keepalive requests keep the connection alive.
func TestRepliesWhenServerAsks(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	cfg := testConfig(t, dsn, "asks", decode.TestDecoding)
	cfg.CreateSlot = true
	cfg.StatusInterval = time.Hour
	cfg.Conn.RuntimeParams["wal_sender_timeout"] = "1s"
	start(t, cfg, true)
	waitActive(t, conn, "asks")
	pid := func() int {
		var p int
		if err := conn.QueryRow(t.Context(), "SELECT coalesce(active_pid, 0) FROM pg_replication_slots WHERE slot_name = 'asks'").Scan(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := pid()
	for i := 0; i < 8; i++ { // four wal_sender_timeouts
		time.Sleep(500 * time.Millisecond)
		if p := pid(); p != first {
			t.Fatalf("walsender changed from %d to %d: the server timed the connection out", first, p)
		}
	}
}
