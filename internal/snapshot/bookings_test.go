package snapshot

import (
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
)

func TestReadersFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ workers, used, others, want int }{
		{1, 0, 0, 1},
		{2, 0, 0, 2}, // one table: both read it
		{2, 0, 1, 1}, // two tables: one each
		{2, 1, 0, 1},
		{4, 0, 2, 2}, // three tables: the first started gets the spare one
		{4, 3, 0, 1},
		{8, 2, 0, 6},
	} {
		if got := readersFor(tc.workers, tc.used, tc.others); got != tc.want {
			t.Errorf("readersFor(%d workers, %d used, %d others) = %d, want %d", tc.workers, tc.used, tc.others, got, tc.want)
		}
	}
}

// A table gives back the extra workers it cannot use, never its first,
// and only while it runs; each give-back wakes the runner.
func TestBookings(t *testing.T) {
	t.Parallel()
	a, b := catalog.Name{Schema: "public", Table: "a"}, catalog.Name{Schema: "public", Table: "b"}
	bk := newBookings()
	woke := func() bool {
		select {
		case <-bk.freed:
			return true
		default:
			return false
		}
	}
	bk.book(a, 3)
	bk.book(b, 1)
	if got := bk.used(); got != 4 {
		t.Fatalf("used %d, want 4", got)
	}
	bk.release(a, 1)
	if got := bk.used(); got != 3 || !woke() {
		t.Fatalf("after a gave one back: used %d, want 3, and the runner woken", got)
	}
	bk.release(a, 5) // more than it has: its first stays
	if got := bk.used(); got != 2 || !bk.running(a) || !woke() {
		t.Fatalf("after a gave all back: used %d, want 2 with a still running", got)
	}
	bk.release(b, 0)
	if woke() {
		t.Fatal("giving back nothing woke the runner")
	}
	bk.end(a)
	bk.release(a, 1) // a late give-back of an ended table changes nothing
	if got := bk.used(); got != 1 || bk.running(a) || bk.empty() || woke() {
		t.Fatalf("after a ended: used %d, want 1 (b's), a not running", got)
	}
	bk.end(b)
	if !bk.empty() {
		t.Fatal("no table runs, yet not empty")
	}
}
