package checkpoint

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/jackc/pglogrepl"
)

func TestInOrder(t *testing.T) {
	tr := New(10)
	a, b := tr.Record(), tr.Record()
	tr.Commit(100)
	tr.Commit(110) // an empty transaction
	c := tr.Record()
	tr.Commit(120)
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

func TestFilteredTransactionsAcknowledgeInOrder(t *testing.T) {
	tr := New(0)
	tr.Commit(10)
	tr.Commit(20)
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
			tr.Commit(lsn)
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
			tr.Commit(pglogrepl.LSN(i + 1))
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
			tr.Commit(pglogrepl.LSN(i))
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
					tr.Commit(lsn)
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
