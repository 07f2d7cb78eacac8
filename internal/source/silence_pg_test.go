package source

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// Postgres answers a status update that asks for a reply with a
// keepalive, so an idle but healthy stream is never taken for a dead one,
// even with the shortest silence allowed: the server's own
// wal_sender_timeout, 1s on this test's server.
func TestIdleStreamAnswersReplyRequests(t *testing.T) {
	srv := testenv.StartCluster(t, testenv.ClusterOptions{Conf: "wal_level = logical\nwal_sender_timeout = 1s"})
	cfg := testConfig(t, srv.DSN, testenv.Name(t), decode.TestDecoding)

	conn, err := pgconn.ConnectConfig(t.Context(), cfg.Conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ours, want time.Duration }{
		{100 * time.Millisecond, time.Second}, // never under wal_sender_timeout
		{time.Minute, time.Minute},
		{0, 0}, // off stays off
	} {
		if got := silenceLimit(t.Context(), conn, tc.ours); got != tc.want {
			t.Errorf("silenceLimit(%s) = %s with wal_sender_timeout 1s, want %s", tc.ours, got, tc.want)
		}
	}
	conn.Close(t.Context())

	cfg.CreateSlot = true
	cfg.ReceiveTimeout = 100 * time.Millisecond
	r := start(t, cfg, true)
	select {
	case <-r.src.Started():
	case <-r.done:
		t.Fatalf("Run returned at start: %v", r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("no session within 30s")
	}
	time.Sleep(3 * time.Second) // thirty status periods, three silence limits
	if n := r.src.Sessions(); n != 1 {
		t.Fatalf("%d sessions over 3s of an idle stream, want 1 (a healthy connection given up?)", n)
	}
	if n := r.rec.replies.Load(); n < 3 {
		t.Fatalf("%d replies to requests over 3s of silence, want several", n)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}
