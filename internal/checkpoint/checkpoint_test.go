package checkpoint

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
)

func TestInOrder(t *testing.T) {
	tr := New(10)
	a, b := tr.Record(), tr.Record()
	tr.Commit(100, time.Time{})
	tr.Commit(110, time.Time{}) // an empty transaction
	c := tr.Record()
	tr.Commit(120, time.Time{})
	if tr.Flush() != 10 {
		t.Fatalf("flush %s before any ack", tr.Flush())
	}
	tr.Ack(b)
	if tr.Flush() != 10 {
		t.Fatalf("flush %s with record 1 unacknowledged", tr.Flush())
	}
	tr.Ack(a)
	if tr.Flush() != 110 {
		t.Fatalf("flush %s, want 110: the empty transaction follows at once", tr.Flush())
	}
	tr.Idle(500)
	if tr.Flush() != 110 {
		t.Fatalf("keepalive moved flush to %s with a record in flight", tr.Flush())
	}
	tr.Ack(c)
	tr.Idle(500)
	if tr.Flush() != 500 || tr.InFlight() != 0 {
		t.Fatalf("flush %s, in flight %d; want 500 and 0 once idle", tr.Flush(), tr.InFlight())
	}
	tr.Idle(400)
	if tr.Flush() != 500 {
		t.Fatal("flush went backwards")
	}
}

// Raise is the slot's position at a session start: it lifts a new
// tracker's flush LSN, never lowers it, and the commits read after it
// still flush in order.
func TestRaise(t *testing.T) {
	tr := New(0)
	tr.Raise(100)
	if tr.Flush() != 100 {
		t.Fatalf("flush %s after Raise(100)", tr.Flush())
	}
	tr.Raise(50)
	if tr.Flush() != 100 {
		t.Fatalf("Raise lowered flush to %s", tr.Flush())
	}
	a := tr.Record()
	tr.Commit(200, time.Time{})
	tr.Raise(100) // a reconnect: the slot stands where we reported
	if tr.Flush() != 100 {
		t.Fatalf("flush %s with record %d unacknowledged", tr.Flush(), a)
	}
	tr.Ack(a)
	if tr.Flush() != 200 {
		t.Fatalf("flush %s after the ack, want 200", tr.Flush())
	}
}

func TestFilteredTransactionsAcknowledgeInOrder(t *testing.T) {
	tr := New(0)
	tr.Commit(10, time.Time{})
	tr.Commit(20, time.Time{})
	if tr.Flush() != 20 {
		t.Fatalf("flush %s, want 20", tr.Flush())
	}
}

// Property: whatever the order of acknowledgements, the flush LSN is exactly
// the commit LSN of the last transaction whose records and all earlier
// records are acknowledged, and so never passes an unacknowledged record.
func TestRandomAckOrders(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 42))
		tr := New(1)
		type txn struct {
			last uint64
			lsn  pglogrepl.LSN
		}
		var txns []txn
		var seqs []uint64
		lsn := pglogrepl.LSN(1)
		for i := 0; i < 1+rng.IntN(60); i++ {
			for j := rng.IntN(6); j > 0; j-- {
				seqs = append(seqs, tr.Record())
			}
			lsn += pglogrepl.LSN(1 + rng.IntN(100))
			tr.Commit(lsn, time.Time{})
			txns = append(txns, txn{uint64(len(seqs)), lsn})
		}
		rng.Shuffle(len(seqs), func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })
		acked := make([]bool, len(seqs)+1)
		check := func() {
			prefix := uint64(0)
			for prefix < uint64(len(seqs)) && acked[prefix+1] {
				prefix++
			}
			want := pglogrepl.LSN(1)
			for _, x := range txns {
				if x.last <= prefix {
					want = x.lsn
				}
			}
			if got := tr.Flush(); got != want {
				t.Fatalf("seed %d: flush %s, want %s (acked prefix %d)", seed, got, want, prefix)
			}
			waiting := uint64(0)
			for _, a := range acked[1:] {
				if !a {
					waiting++
				}
			}
			if got := tr.InFlight(); got != waiting {
				t.Fatalf("seed %d: %d in flight, want the %d not acknowledged", seed, got, waiting)
			}
		}
		check()
		for _, s := range seqs {
			if rng.IntN(10) == 0 {
				tr.Ack(s) // duplicates are harmless
			}
			tr.Ack(s)
			acked[s] = true
			check()
		}
		if tr.InFlight() != 0 {
			t.Fatalf("seed %d: %d in flight after every ack", seed, tr.InFlight())
		}
	}
}

func TestConcurrentAcks(t *testing.T) {
	tr := New(0)
	const n = 10000
	seqs := make([]uint64, n)
	for i := range seqs {
		seqs[i] = tr.Record()
		if i%10 == 9 {
			tr.Commit(pglogrepl.LSN(i+1), time.Time{})
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				tr.Ack(seqs[i])
			}
		}()
	}
	wg.Wait()
	if tr.Flush() != n || tr.InFlight() != 0 {
		t.Fatalf("flush %s in flight %d", tr.Flush(), tr.InFlight())
	}
}

func BenchmarkRecordAck(b *testing.B) {
	tr := New(0)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s := tr.Record()
		if i%100 == 99 {
			tr.Commit(pglogrepl.LSN(i), time.Time{})
		}
		tr.Ack(s)
	}
}

// The watermark moves only when every record up to it is acknowledged.
func TestWatermark(t *testing.T) {
	tr := New(0)
	a, b, c := tr.Record(), tr.Record(), tr.Record()
	tr.Ack(c)
	if wm, n := tr.Watermark(); wm != 0 || n != 2 {
		t.Fatalf("after an ack above a gap: watermark %d, %d in flight; want 0 and 2", wm, n)
	}
	tr.Ack(a)
	if wm, n := tr.Watermark(); wm != a || n != 1 {
		t.Fatalf("after the first ack: watermark %d, %d in flight; want %d and 1", wm, n, a)
	}
	tr.Ack(b)
	if wm, n := tr.Watermark(); wm != c || n != 0 {
		t.Fatalf("after every ack: watermark %d, %d in flight; want %d and 0", wm, n, c)
	}
}

// Commits with no record between them share one entry, so the list grows
// with the records in flight, not with the transactions; the shared entry
// still flushes to the latest of them, and only once its record is
// acknowledged.
func TestEmptyCommitsCollapse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		records int // in flight, one per transaction
		empties int // empty commits after each
		entries int
	}{
		{"only empty commits", 0, 1000, 0}, // flushed at once
		{"one record", 1, 1000, 1},
		{"three records", 3, 1000, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := New(0)
			var seqs []uint64
			lsn := pglogrepl.LSN(0)
			for i := 0; i < max(tc.records, 1); i++ {
				if i < tc.records {
					seqs = append(seqs, tr.Record())
				}
				for j := 0; j <= tc.empties; j++ {
					lsn++
					tr.Commit(lsn, time.Time{})
				}
			}
			if got := len(tr.commits) - tr.head; got != tc.entries {
				t.Fatalf("%d entries, want %d", got, tc.entries)
			}
			if tc.records > 0 && tr.Flush() != 0 {
				t.Fatalf("flush %s with every record in flight", tr.Flush())
			}
			for _, s := range seqs {
				tr.Ack(s)
			}
			if tr.Flush() != lsn {
				t.Fatalf("flush %s, want the last commit %s", tr.Flush(), lsn)
			}
		})
	}
}

// Times gives the commit time of the oldest transaction not yet flushed
// (the lag's start) and of the last one flushed. Empty transactions that
// share an entry keep its oldest time while waiting and date the stream by
// the latest once flushed; a transaction without a time is not dated.
func TestTimes(t *testing.T) {
	at := func(s int64) time.Time { return time.Unix(s, 0) }
	type step struct {
		record  bool          // a record, in flight until acked
		commit  pglogrepl.LSN // else a commit at this LSN
		time    int64         // its commit time, s; 0: none
		ack     int           // else acknowledge the ack-th record (1-based)
		waiting int64         // then Times gives these, s; 0: zero
		deliv   int64
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"in order", []step{
			{record: true}, {commit: 10, time: 100, waiting: 100},
			{record: true}, {commit: 20, time: 200, waiting: 100},
			{ack: 1, waiting: 200, deliv: 100},
			{ack: 2, deliv: 200},
		}},
		{"out of order", []step{
			{record: true}, {commit: 10, time: 100, waiting: 100},
			{record: true}, {commit: 20, time: 200, waiting: 100},
			{ack: 2, waiting: 100},
			{ack: 1, deliv: 200},
		}},
		{"empty commits share an entry", []step{
			{record: true}, {commit: 10, time: 100, waiting: 100},
			{commit: 20, time: 200, waiting: 100}, {commit: 30, time: 300, waiting: 100},
			{ack: 1, deliv: 300},
		}},
		{"empty commits after a flush", []step{
			{commit: 10, time: 100, deliv: 100}, {commit: 20, time: 200, deliv: 200},
		}},
		{"no time", []step{
			{record: true}, {commit: 10, time: 100, waiting: 100},
			{record: true}, {commit: 20, waiting: 100},
			{ack: 1, deliv: 100}, // waiting for a transaction without a time
			{ack: 2, deliv: 100},
		}},
		{"a time after none in one entry", []step{
			{record: true}, {commit: 10}, {commit: 20, time: 200, waiting: 200},
			{ack: 1, deliv: 200},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := New(0)
			var seqs []uint64
			for i, s := range tc.steps {
				switch {
				case s.record:
					seqs = append(seqs, tr.Record())
					continue
				case s.commit != 0:
					var ct time.Time
					if s.time != 0 {
						ct = at(s.time)
					}
					tr.Commit(s.commit, ct)
				default:
					tr.Ack(seqs[s.ack-1])
				}
				waiting, deliv := tr.Times()
				if want := s.waiting; (want == 0) != waiting.IsZero() || (want != 0 && !waiting.Equal(at(want))) {
					t.Fatalf("step %d: waiting %v, want %d s", i, waiting, want)
				}
				if want := s.deliv; (want == 0) != deliv.IsZero() || (want != 0 && !deliv.Equal(at(want))) {
					t.Fatalf("step %d: delivered %v, want %d s", i, deliv, want)
				}
			}
		})
	}
}

// A sink acknowledges a batch in one call (a Kinesis record's user
// records), in any order within it, duplicates and unknown numbers
// included: the same as one call per record.
func TestAckBatch(t *testing.T) {
	tr := New(10)
	var seqs []uint64
	for i := range 5 {
		seqs = append(seqs, tr.Record())
		tr.Commit(pglogrepl.LSN(100+10*i), time.Time{})
	}
	tr.Ack(seqs[2], seqs[0], seqs[0], 99)
	if got := tr.Flush(); got != 100 {
		t.Fatalf("flush %s after acking records 1 and 3, want 100", got)
	}
	tr.Ack(seqs[4], seqs[1], seqs[3])
	if got := tr.Flush(); got != 140 || tr.InFlight() != 0 {
		t.Fatalf("flush %s, in flight %d after acking the rest; want 140 and 0", got, tr.InFlight())
	}
	tr.Ack() // an empty batch is nothing
	if got := tr.Flush(); got != 140 {
		t.Fatalf("flush %s after an empty batch", got)
	}
}
