// Package checkpoint turns out-of-order acknowledgements of records into
// the flush LSN that is safe to report to Postgres: the commit LSN of the
// last transaction whose records, and every record before them, have been
// acknowledged. It also keeps the commit times of the transactions read
// and not yet flushed, for the lag in seconds: one ordered list serves both.
package checkpoint

import (
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
)

// Tracker is an ordered ack tracker, safe for concurrent use: the pipeline
// calls Record and Commit in stream order from one goroutine, the sink calls
// Ack from any goroutine.
//
// Records are numbered 1, 2, 3 … by Record. Ack(seq) may come in any
// order. The watermark is the highest seq such that every record up to it
// is acknowledged; the flush LSN is the commit LSN of the last transaction
// whose last record is at or below the watermark. A transaction without
// records (empty, or every change filtered) is acknowledged as soon as
// everything before it is.
type Tracker struct {
	mu        sync.Mutex
	next      uint64 // seq of the next record
	watermark uint64 // every seq <= watermark is acknowledged
	acked     ring   // acknowledgements above the watermark
	ahead     uint64 // how many: set bits in acked
	// commits[head:] are the commits not yet flushed, in stream order.
	// Consecutive commits with no record between them share one entry
	// (they are flushed at the same moment), so there are at most as many
	// entries as records above the watermark, plus one: memory follows the
	// records in flight, not the number of transactions.
	commits []commit
	head    int
	flush   pglogrepl.LSN
	// delivered is the commit time (Unix ns) of the last transaction the
	// flush LSN passed; 0 until one with a known time has.
	delivered int64
	onDeliver func(lsn pglogrepl.LSN, at time.Time) // nil unless set
}

// commit is one entry: a transaction, and the transactions without records
// that follow it. Times are Unix ns, 0 when the plugin gives none.
type commit struct {
	lastSeq uint64        // the last record before this commit
	lsn     pglogrepl.LSN // the latest commit with no record after lastSeq
	first   int64         // commit time of the entry's oldest transaction: its lag
	last    int64         // and of its latest, which is delivered last
}

// New returns a Tracker whose flush LSN starts at start. The pipeline
// starts it at 0: the source raises it (Raise) to the slot's
// confirmed_flush_lsn at each session's start, and a position only grows.
func New(start pglogrepl.LSN) *Tracker {
	return &Tracker{next: 1, flush: start}
}

// Record numbers the next record.
func (t *Tracker) Record() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	seq := t.next
	t.next++
	return seq
}

// Commit marks the end of a transaction whose records were numbered before
// this call; lsn is where a restart must resume after it (the end of its
// commit record), at its commit time on the server (zero if unknown).
func (t *Tracker) Commit(lsn pglogrepl.LSN, at time.Time) {
	var ns int64
	if !at.IsZero() {
		ns = at.UnixNano()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	last := t.next - 1
	if n := len(t.commits); n > t.head && t.commits[n-1].lastSeq == last {
		// No record since the previous commit: both are flushed when
		// record last is, so the later one stands for both. The entry's
		// oldest time stays (the lag is the oldest waiting transaction's
		// age); its latest moves on (what delivery dates the stream by).
		c := &t.commits[n-1]
		c.lsn = max(c.lsn, lsn)
		if ns != 0 {
			if c.first == 0 {
				c.first = ns
			}
			c.last = ns
		}
	} else {
		t.commits = append(t.commits, commit{lastSeq: last, lsn: lsn, first: ns, last: ns})
	}
	t.advance()
}

// OnDeliver sets fn to be called, under the tracker's lock, for each entry
// the flush LSN passes: its LSN, and the commit time of its oldest
// transaction (a run of transactions without records after it is delivered
// with it, as one call). For debug logging; fn must not call the tracker.
func (t *Tracker) OnDeliver(fn func(lsn pglogrepl.LSN, at time.Time)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.onDeliver = fn
}

// Times gives the commit time of the oldest transaction read and not yet
// flushed (zero if none, or if the plugin gave it no time), and of the last
// one flushed (zero if none yet): what the lag in seconds is measured from.
func (t *Tracker) Times() (waiting, delivered time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.advance()
	if t.head < len(t.commits) && t.commits[t.head].first != 0 {
		waiting = time.Unix(0, t.commits[t.head].first)
	}
	if t.delivered != 0 {
		delivered = time.Unix(0, t.delivered)
	}
	return waiting, delivered
}

// Ack acknowledges records seqs, under one lock: a sink acknowledges a
// batch at a time. Acknowledging twice is harmless.
func (t *Tracker) Ack(seqs ...uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, seq := range seqs {
		if seq <= t.watermark || seq >= t.next {
			continue
		}
		if t.acked.set(seq - t.watermark - 1) {
			t.ahead++
		}
		for t.acked.first() {
			t.acked.shift()
			t.watermark++
			t.ahead--
		}
	}
	// The commits the watermark passed are flushed when the flush LSN is
	// next asked for, or at the next commit: an ack does no more than move
	// the watermark. Unless deliveries are logged, with their latency,
	// which must be read when the ack comes.
	if t.onDeliver != nil {
		t.advance()
	}
}

// Idle offers the WAL end of a server keepalive: every change before it has
// been handed over. If nothing is in flight, it becomes the flush LSN, so an
// idle or fully filtered database does not pin WAL.
func (t *Tracker) Idle(walEnd pglogrepl.LSN) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.advance()
	if t.watermark == t.next-1 && walEnd > t.flush {
		t.flush = walEnd
	}
}

// Raise raises the flush LSN to lsn, and never lowers it: when a session
// starts, the source offers the slot's confirmed_flush_lsn, which a new
// tracker does not know and which is never past what it reported.
func (t *Tracker) Raise(lsn pglogrepl.LSN) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.advance()
	t.flush = max(t.flush, lsn)
}

// Flush is the LSN that is safe to report as flushed: the source asks for
// it when a status update is due. It is the one copy of that position.
func (t *Tracker) Flush() pglogrepl.LSN {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.advance()
	return t.flush
}

// InFlight counts the records handed over and not yet acknowledged (not
// those acknowledged out of order behind one that is not).
func (t *Tracker) InFlight() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.next - 1 - t.watermark - t.ahead
}

// Watermark is the highest seq up to which every record is acknowledged,
// and InFlight: readiness samples it to tell a stuck sink from an idle one.
func (t *Tracker) Watermark() (watermark, inFlight uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.watermark, t.next - 1 - t.watermark - t.ahead
}

// advance flushes the commits the watermark has passed: each commit is
// passed once, so this is amortised O(1) per commit.
func (t *Tracker) advance() {
	for t.head < len(t.commits) && t.commits[t.head].lastSeq <= t.watermark {
		c := &t.commits[t.head]
		t.flush = max(t.flush, c.lsn)
		if c.last != 0 {
			t.delivered = c.last
		}
		if t.onDeliver != nil {
			var at time.Time
			if c.first != 0 {
				at = time.Unix(0, c.first)
			}
			t.onDeliver(c.lsn, at)
		}
		t.head++
	}
	// Reuse the array once it is drained; otherwise move the waiting tail
	// down only when the passed head is the larger part, so that each
	// entry is copied O(1) times on average, never once per ack.
	switch {
	case t.head == len(t.commits):
		t.commits, t.head = t.commits[:0], 0
	case t.head >= 1024 && t.head > len(t.commits)/2:
		n := copy(t.commits, t.commits[t.head:])
		t.commits, t.head = t.commits[:n], 0
	}
}

// ring is a growable bitset of the acknowledgements above the watermark;
// bit 0 is watermark+1.
type ring struct {
	bits  []uint64
	start int // bit index of bit 0 within bits
}

// set sets bit i and reports whether it was clear.
func (r *ring) set(i uint64) bool {
	need := int(i) + r.start + 1
	if need > len(r.bits)*64 {
		r.compact()
		need = int(i) + r.start + 1
		for need > len(r.bits)*64 {
			r.bits = append(r.bits, make([]uint64, max(1, len(r.bits)))...)
		}
	}
	p := r.start + int(i)
	was := r.bits[p/64] & (1 << (p % 64))
	r.bits[p/64] |= 1 << (p % 64)
	return was == 0
}

func (r *ring) first() bool {
	if len(r.bits) == 0 {
		return false
	}
	return r.bits[r.start/64]&(1<<(r.start%64)) != 0
}

func (r *ring) shift() {
	r.bits[r.start/64] &^= 1 << (r.start % 64)
	r.start++
	if r.start >= 64*len(r.bits)/2 {
		r.compact()
	}
}

// compact drops the words before start.
func (r *ring) compact() {
	w := r.start / 64
	if w == 0 {
		return
	}
	n := copy(r.bits, r.bits[w:])
	clear(r.bits[n:])
	r.start -= w * 64
}
