package source

import (
	"testing"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// Postgres answers a status update that asks for a reply with a
// keepalive, so an idle but healthy stream is never taken for a dead one,
// however short the silence allowed.
func TestIdleStreamAnswersReplyRequests(t *testing.T) {
	dsn := testenv.Database(t)
	cfg := testConfig(t, dsn, testenv.Name(t), decode.TestDecoding)
	cfg.CreateSlot = true
	cfg.ReceiveTimeout = time.Second
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
