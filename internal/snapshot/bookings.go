package snapshot

import (
	"sync"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
)

// bookings are the workers (connections that read) each running table
// takes: its first reader and the extra ones it was given. A table gives
// back the extras it finds it cannot use (it has no key, or too few spans
// to share), so that a table asked for meanwhile need not wait for its
// end. Run books and ends; a table's worker releases.
type bookings struct {
	mu sync.Mutex
	n  map[catalog.Name]int
	// freed has room for one: a table gave workers back, and Run looks
	// for work at once.
	freed chan struct{}
}

func newBookings() *bookings {
	return &bookings{n: map[catalog.Name]int{}, freed: make(chan struct{}, 1)}
}

func (b *bookings) book(table catalog.Name, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n[table] = n
}

// release gives back n of table's extra workers; its first stays booked
// until end. A worker calls it only while it runs, so it never follows
// its table's end.
func (b *bookings) release(table catalog.Name, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	have, ok := b.n[table]
	if n <= 0 || !ok {
		return
	}
	b.n[table] = max(1, have-n)
	select {
	case b.freed <- struct{}{}:
	default:
	}
}

func (b *bookings) end(table catalog.Name) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.n, table)
}

func (b *bookings) running(table catalog.Name) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n[table] > 0
}

// used is the workers booked.
func (b *bookings) used() (workers int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range b.n {
		workers += n
	}
	return workers
}

// empty reports whether no table runs.
func (b *bookings) empty() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.n) == 0
}

// readersFor is how many of workers a table started gets, with used of
// them taken and others (other tables) still to start after it: one, and, once
// each of the others can have one, the spare ones.
func readersFor(workers, used, others int) int {
	return 1 + max(0, workers-used-1-others)
}
