package checkpoint

import (
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
)

// BenchmarkTrackerInOrder runs 1,000,000 single-record transactions
// through the tracker with in-order acknowledgements, the flush LSN read
// after each ack as the pipeline does; ns/record is the cost of one
// transaction's Record, Commit, Ack and Flush. The window is how many
// records are in flight: 1 (each acknowledged at once), or a backlog (all
// read before the first acknowledgement, as when Kinesis is slower than
// the database; 160000 is the size of the measurement).
func BenchmarkTrackerInOrder(b *testing.B) {
	const txns = 1_000_000
	at := time.Now() // a commit time, as the plugins give
	for _, bc := range []struct {
		name   string
		window int
	}{
		{"window=1", 1},
		{"window=1000", 1000},
		{"backlog=160000", 160_000},
		{"backlog=1000000", txns},
	} {
		b.Run(bc.name, func(b *testing.B) {
			n := max(txns, bc.window)
			if bc.window == 160_000 {
				n = bc.window
			}
			seqs := make([]uint64, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tr := New(0)
				acked := 0
				for j := 0; j < n; j++ {
					seqs[j] = tr.Record()
					tr.Commit(pglogrepl.LSN(j+1), at)
					if j+1-acked >= bc.window {
						tr.Ack(seqs[acked])
						acked++
						_ = tr.Flush()
					}
				}
				for ; acked < n; acked++ {
					tr.Ack(seqs[acked])
					_ = tr.Flush()
				}
				if tr.Flush() != pglogrepl.LSN(n) {
					b.Fatalf("flush %s", tr.Flush())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
		})
	}
}

// BenchmarkTrackerEmptyCommits holds one record in flight while 1,000,000
// empty (or fully filtered) transactions commit, and reports how much the
// live heap grew: it must stay bounded by the records in flight.
func BenchmarkTrackerEmptyCommits(b *testing.B) {
	const txns = 1_000_000
	at := time.Now()
	b.ReportAllocs()
	var grew float64
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tr := New(0)
		s := tr.Record()
		for j := 1; j <= txns; j++ {
			tr.Commit(pglogrepl.LSN(j), at)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		grew = max(grew, float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)))
		if tr.Flush() != 0 {
			b.Fatalf("flush %s with the first record in flight", tr.Flush())
		}
		tr.Ack(s)
		if tr.Flush() != txns {
			b.Fatalf("flush %s after the ack", tr.Flush())
		}
	}
	b.ReportMetric(grew, "heap-B")
}
