package testenv

import (
	"context"
	"testing"
	"time"
)

// WriteElsewhere keeps another database of the server writing, a few
// inserts every 20 ms, until the test and its subtests (parallel ones
// too) are done: the server's WAL moves while the test's own database is
// idle.
func WriteElsewhere(t testing.TB) {
	t.Helper()
	busy := Connect(t, Database(t))
	if _, err := busy.Exec(context.Background(), "CREATE TABLE w (id bigserial PRIMARY KEY, v text)"); err != nil {
		t.Fatalf("create the busy database's table: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for ctx.Err() == nil {
			_, _ = busy.Exec(ctx, "INSERT INTO w (v) SELECT 'x' FROM generate_series(1, 50)")
			time.Sleep(20 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-stopped })
}
