package snapshot

import (
	"sync"
	"sync/atomic"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// Exchange hands chunks from the runner's workers to the stream, which
// places them where they are consistent with the changes around them (the
// DBLog method):
//
//  1. a reader announces a chunk (Expect), writes its low watermark, reads
//     the chunk in a short transaction, hands the rows over (Fill), and
//     writes its high watermark;
//  2. the stream, reading the low watermark, opens the chunk's window
//     (Open); every change of the chunk's table read until the high
//     watermark names its key (Touch), and that row is dropped from the
//     chunk: the change, read later than the row or not, comes after the
//     row's last read in the stream and wins;
//  3. at the high watermark the stream takes the chunk (Take) and
//     publishes the rows left as reads (Each), and at the watermark's
//     commit (Commit) the worker learns the LSN past which the chunk is
//     delivered (Wait).
//
// A change read in a window whose key cannot be told (a delete under
// REPLICA IDENTITY NOTHING, a truncate) spoils the chunk: it is read again
// under new watermarks rather than risk publishing a row that is gone.
//
// One more case spoils a chunk. A transaction is visible to others only
// some time after its commit record is written (Postgres writes the
// record, flushes it, waits for synchronous standbys, and only then drops
// the transaction from the running ones): one whose commit record comes
// just before the low watermark's can still be invisible to the chunk's
// read, which starts after the watermark has committed. Its changes then
// come before the window, and the chunk's copy of its rows is older than
// them. So the chunk's read names the transactions its snapshot cannot
// see (Fill's Invisible: running, or from its xmax on), the stream remembers the last transactions
// it read (Commit), and a chunk is read again when one of those invisible
// ones was read before its low watermark.
//
// The stream's methods are called from the source's goroutine, the
// workers' from theirs.
type Exchange struct {
	Slot, Run string

	open atomic.Int32 // windows open: the stream's fast path when none is
	// recent are the last transactions the stream read, by the order of
	// their commits (recent[n % len] is the n-th); the stream's alone.
	recent  [recentCommits]uint32
	commits uint64
	// marked: the transaction being read holds a watermark, of any run
	// or slot; changed: it changes rows. One that is marked and changes
	// none (each watermark is written in a transaction of its own) is
	// not among the recent ones: another reader's watermarks, running
	// while a chunk is read, would spoil it for nothing. The stream's
	// alone.
	marked, changed bool
	mu              sync.Mutex
	next            uint64
	// chunks by id: from Expect until the stream has committed them (or
	// the worker gave up on them).
	chunks map[uint64]*Handoff
	// emitted: taken at a high watermark whose commit is not read yet.
	emitted []*Handoff
}

// NewExchange returns an exchange for the marks of slot written by run.
func NewExchange(slot, run string) *Exchange {
	return &Exchange{Slot: slot, Run: run, chunks: map[uint64]*Handoff{}}
}

// Handoff is one chunk on its way through the stream.
type Handoff struct {
	ID    uint64
	Table catalog.Name
	Key   []string // the columns a window matches changes by; none: no window

	rows      Batch
	invisible Invisible // to the chunk's read
	before    uint64    // commits read before the low watermark
	filled    bool
	window    map[string]struct{} // the keys changed since the low watermark
	opened    bool
	spoiled   bool
	taken     bool

	// Set by the stream when the chunk is delivered to the sink:
	Published, Dropped int
	Spoiled            bool          // read it again
	CommitLSN          pglogrepl.LSN // the high watermark's commit
	done               chan struct{}
}

// Expect announces a chunk of table, to be matched by key, before its low
// watermark is written; the returned chunk's ID goes into the marks.
func (x *Exchange) Expect(table catalog.Name, key []string) *Handoff {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.next++
	c := &Handoff{ID: x.next, Table: table, Key: key, done: make(chan struct{})}
	x.chunks[c.ID] = c
	return c
}

// Batch is a chunk's rows as the stream publishes them: Rows, or a
// test's.
type Batch interface {
	// Each calls fn with each row's event, in order; the event may be
	// reused for the next row.
	Each(fn func(ev *decode.Event) error) error
}

// Fill hands over the chunk's rows, before its high watermark is written,
// and the transactions its read could not see.
func (x *Exchange) Fill(c *Handoff, rows Batch, invisible Invisible) {
	x.mu.Lock()
	defer x.mu.Unlock()
	c.rows, c.invisible, c.filled = rows, invisible, true
}

// Done is closed when the stream has committed the chunk (or, Spoiled,
// given it up).
func (c *Handoff) Done() <-chan struct{} { return c.done }

// Forget drops a chunk whose watermarks will not come (its worker failed
// between them).
func (x *Exchange) Forget(c *Handoff) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.chunks[c.ID] == c && c.opened && !c.taken {
		x.open.Add(-1)
	}
	delete(x.chunks, c.ID)
}

// ours returns the chunk a mark is about, nil for another run's or slot's.
func (x *Exchange) ours(m Mark) *Handoff {
	if m.Run != x.Run || m.Slot != x.Slot {
		return nil
	}
	return x.chunks[m.Chunk]
}

// Open opens the window of the chunk a low watermark is about. A mark read
// again after a reconnect leaves the window as it is: the changes it holds
// are not all read again.
func (x *Exchange) Open(m Mark) {
	x.marked = true
	x.mu.Lock()
	defer x.mu.Unlock()
	c := x.ours(m)
	if c == nil || c.opened {
		return
	}
	c.opened, c.window, c.before = true, map[string]struct{}{}, x.commits
	x.open.Add(1)
}

// Changed tells the exchange that the transaction being read changes a
// row (of any table): the stream's, for each change.
func (x *Exchange) Changed() { x.changed = true }

// Watching reports whether any window is open: the stream names the keys
// of its changes only then.
func (x *Exchange) Watching() bool { return x.open.Load() > 0 }

// Touch tells the open windows of table that a change named keys (its
// new and old key, as text, by the columns keyOf is given); keyOf returns
// ok false when the change does not carry them, which spoils the chunk.
func (x *Exchange) Touch(table catalog.Name, keyOf func(cols []string) (keys []string, ok bool)) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, c := range x.chunks {
		if !c.opened || c.taken || c.Table != table {
			continue
		}
		keys, ok := keyOf(c.Key)
		if !ok || len(c.Key) == 0 {
			// No key to match by: a table without one is read without
			// the guarantee (its rows are never dropped); a keyed one's
			// change without its key spoils the chunk.
			c.spoiled = c.spoiled || (len(c.Key) > 0 && !ok)
			continue
		}
		for _, k := range keys {
			c.window[k] = struct{}{}
		}
	}
}

// Take returns the chunk a high watermark is about, nil for a mark not
// ours, or read again after the chunk was taken. The caller publishes its
// rows (Each).
func (x *Exchange) Take(m Mark) *Handoff {
	x.marked = true
	x.mu.Lock()
	defer x.mu.Unlock()
	c := x.ours(m)
	if c == nil || c.taken || !c.filled {
		return nil
	}
	c.taken = true
	if c.opened {
		x.open.Add(-1)
	}
	x.emitted = append(x.emitted, c)
	if c.spoiled || !c.opened || x.readBefore(c.invisible, c.before) {
		// Without its low watermark's window the chunk cannot be
		// trusted either (it cannot happen but after a bug).
		c.Spoiled = true
		c.rows = nil
	}
	return c
}

// Each calls fn with the event of each row of a taken chunk that no
// change in its window named, in order, and counts those it drops. keyOf
// gives a row's key text by the chunk's key columns. The event is reused
// for the next row: fn copies what it keeps. The stream's alone: taken,
// the chunk's rows and window change no more.
func (c *Handoff) Each(keyOf func(row *decode.Event, cols []string) string, fn func(ev *decode.Event) error) error {
	if c.rows == nil {
		return nil
	}
	match := len(c.window) > 0 && len(c.Key) > 0 // else every row stands, and no key text is made
	err := c.rows.Each(func(ev *decode.Event) error {
		if match {
			if _, changed := c.window[keyOf(ev, c.Key)]; changed {
				c.Dropped++
				return nil
			}
		}
		return fn(ev)
	})
	c.window = nil
	return err
}

// Restart tells the exchange that the stream starts again, from the flush
// LSN: a chunk taken and not yet committed may have been cut off while its
// rows were published, and its high watermark, read again, finds it taken.
// It is spoiled (read again; the rows it published are duplicates), and
// its worker learns so at the commit read again.
func (x *Exchange) Restart() {
	x.marked, x.changed = false, false // the transaction cut off is read again
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, c := range x.emitted {
		c.Spoiled = true
	}
}

// recentCommits bounds how far before a low watermark a transaction
// invisible to its chunk's read is looked for. Only transactions stuck
// between their commit record and their visibility can be there, fewer
// than the server's connections.
const recentCommits = 1 << 16

// readBefore reports whether a transaction invisible to a chunk's read is
// among the commits read before the before-th.
func (x *Exchange) readBefore(invisible Invisible, before uint64) bool {
	if len(invisible.Running) == 0 && invisible.From == 0 {
		return false
	}
	from := uint64(0)
	if x.commits > recentCommits {
		from = x.commits - recentCommits
	}
	for n := from; n < before; n++ {
		if invisible.has(x.recent[n%recentCommits]) {
			return true
		}
	}
	return false
}

// Commit tells the exchange that transaction xid commits at lsn, and the
// chunks taken since the last commit that theirs (their high watermark's)
// does: they are delivered once the flush LSN reaches it.
func (x *Exchange) Commit(xid uint32, lsn pglogrepl.LSN) {
	if !x.marked || x.changed {
		x.recent[x.commits%recentCommits] = xid
		x.commits++
	}
	x.marked, x.changed = false, false
	if len(x.emitted) == 0 { // only the stream's goroutine appends to it
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, c := range x.emitted {
		c.CommitLSN = lsn
		c.rows = nil
		delete(x.chunks, c.ID)
		close(c.done)
	}
	x.emitted = x.emitted[:0]
}
