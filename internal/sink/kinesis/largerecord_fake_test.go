package kinesis

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis/kpl"
)

// Large records against the fake: a stream whose maximum record size was
// raised past 1 MiB (kinesalite cannot raise it: see stream_test.go).

const mib = 1 << 20

// change is the data of a user record of key and size bytes, data and key
// together, as checkOrder reads it: "key|seq|padding".
func change(key string, seq uint64, size int) []byte {
	prefix := fmt.Sprintf("%s|%d|", key, seq)
	return []byte(prefix + strings.Repeat("x", size-len(key)-len(prefix)))
}

// stored is one Kinesis record the fake holds: its size (data and key)
// and how many user records it carries.
type stored struct{ size, users int }

func (f *fakeKinesis) storedRecords(t *testing.T) []stored {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []stored
	for _, sh := range f.shards {
		for _, r := range sh.recs {
			users, err := kpl.Decode(r.Data)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, stored{len(r.Data) + len(aws.ToString(r.PartitionKey)), len(users)})
		}
	}
	return out
}

// Put takes a change up to the stream's maximum record size and the sink
// delivers it as one Kinesis record; a larger one is an OversizeError
// naming the stream's limit (less the aggregate's framing), for --oversize
// to handle. A stream never raised is as before: 1 MiB.
func TestFakeLargeRecords(t *testing.T) {
	framed := func(limit int) int { return limit - aggregateOverhead("k", limit) }
	for _, tc := range []struct {
		name      string
		kib       int32 // the stream's maximum record size; 0: never raised
		aggregate bool
		fits      int // a change delivered as one Kinesis record
		max       int // the limit an OversizeError names
	}{
		{"4 MiB stream, plain", 4096, false, 3 * mib, 4 * mib},
		{"4 MiB stream, aggregated", 4096, true, 3 * mib, framed(4 * mib)},
		{"10 MiB stream, plain", 10240, false, 10 * mib, 10 * mib},
		{"10 MiB stream, aggregated", 10240, true, framed(10 * mib), framed(10 * mib)},
		{"never raised, plain", 0, false, mib, mib},
		{"never raised, aggregated", 0, true, framed(mib), framed(mib)},
		{"1024 KiB said, aggregated", 1024, true, framed(mib), framed(mib)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeKinesis(1)
			f.setMaxRecordKiB(tc.kib)
			// The shard's rate limit on: a record larger than a second's
			// worth must still go.
			fs := startFake(t, f, Config{Aggregate: tc.aggregate, FlushInterval: time.Millisecond}, true)
			for _, size := range []int{tc.max + 1, 5 * mib} {
				if size <= tc.max {
					continue
				}
				err := fs.s.Put(fs.ctx, sink.Record{Data: change("k", 1, size), PartitionKey: "k", Seq: 1})
				var over *sink.OversizeError
				if !errors.As(err, &over) || over.Size != size || over.Max != tc.max {
					t.Fatalf("Put of a change of %d bytes = %v, want an OversizeError of %d over %d", size, err, size, tc.max)
				}
			}
			fs.put(1, "k", change("k", 1, tc.fits))
			fs.drain()
			fs.stop()
			fs.checkAckedOnce(1)
			checkStream(t, f, 1)
			if recs := f.storedRecords(t); len(recs) != 1 || recs[0].users != 1 || f.callCount() != 1 {
				t.Fatalf("stored %+v in %d calls, want the change as one Kinesis record in one call", recs, f.callCount())
			}
		})
	}
}

// On a raised stream, aggregates of small changes are still sealed at
// 1 MiB (larger ones would carry no more a second, and make every record
// a burst); a large change goes alone, in an aggregate of its own.
func TestFakeLargeChangeAloneInItsAggregate(t *testing.T) {
	const small, n = 1 << 10, 4000
	f := newFakeKinesis(1)
	f.setMaxRecordKiB(4096)
	release := make(chan struct{})
	f.beforeOp = func(*fakeKinesis, int, *kinesis.PutRecordsInput) { <-release } // a backlog
	fs := startFake(t, f, Config{Aggregate: true, FlushInterval: time.Millisecond, NoShardLimit: true}, true)
	big := uint64(n/2 + 1)
	for seq := uint64(1); seq <= n+1; seq++ {
		size := small
		if seq == big {
			size = 3 * mib
		}
		fs.put(seq, "k", change("k", seq, size))
	}
	close(release)
	fs.drain()
	fs.stop()
	fs.checkAckedOnce(n + 1)
	checkStream(t, f, n+1)
	recs := f.storedRecords(t)
	large := 0
	for _, r := range recs {
		switch {
		case r.size > aggregateTarget && r.users != 1:
			t.Fatalf("an aggregate of %d user records and %d bytes, want small changes sealed at %d", r.users, r.size, aggregateTarget)
		case r.size > aggregateTarget:
			large++
		}
	}
	if large != 1 || len(recs) < 5 {
		t.Fatalf("%d Kinesis records over 1 MiB among %d, want the large change's alone among at least 5", large, len(recs))
	}
}

// A call carries at most 5 MiB on a stream never raised, which every
// Kinesis-protocol server enforces, and at most 10 MiB on a raised one:
// a backlog of plain records fills calls up to it, never past it.
func TestFakeCallBytes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		kib        int32
		size, n    int // the backlog: n changes of size bytes, each its own key
		most, over int // the largest call must be at most most, and over over
	}{
		{"never raised", 0, mib - 16, 12, 5 * mib, 4 * mib},
		{"4 MiB", 4096, 3 * mib, 7, 10 * mib, 5 * mib},
		{"10 MiB", 10240, 10*mib - 16, 2, 10 * mib, 9 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeKinesis(1)
			f.setMaxRecordKiB(tc.kib)
			release := make(chan struct{})
			f.beforeOp = func(*fakeKinesis, int, *kinesis.PutRecordsInput) { <-release }
			fs := startFake(t, f, Config{FlushInterval: time.Millisecond, NoShardLimit: true, MaxBuffered: 128 * mib}, true)
			for seq := uint64(1); seq <= uint64(tc.n); seq++ {
				key := fmt.Sprint("k", seq)
				fs.put(seq, key, change(key, seq, tc.size))
			}
			close(release)
			fs.drain()
			fs.stop()
			fs.checkAckedOnce(tc.n)
			checkStream(t, f, tc.n)
			if got := f.largestCall(); got > tc.most || got <= tc.over {
				t.Fatalf("the largest call carried %d bytes, want more than %d and at most %d", got, tc.over, tc.most)
			}
		})
	}
}

// The sink reads the stream's maximum record size again after a reshard:
// a raise is used from then on, and a change over a lowered one is an
// OversizeError.
func TestFakeReshardReadsMaxRecord(t *testing.T) {
	for _, tc := range []struct {
		name      string
		from, to  int32
		aggregate bool
	}{
		{"raised, plain", 0, 4096, false},
		{"raised, aggregated", 0, 4096, true},
		{"lowered, aggregated", 4096, 1024, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeKinesis(1)
			f.setMaxRecordKiB(tc.from)
			f.beforeOp = func(f *fakeKinesis, call int, _ *kinesis.PutRecordsInput) {
				if call == 2 {
					f.split("shardId-000000000000", 500)
					f.maxRecordKiB = tc.to
				}
			}
			fs := startFake(t, f, Config{Aggregate: tc.aggregate, FlushInterval: time.Millisecond}, true)
			if got, want := fs.s.maxRecord.Load(), int64(max(tc.from, 1024))<<10; got != want {
				t.Fatalf("maximum record size %d at start, want %d", got, want)
			}
			fs.expect(2)
			fs.put(1, "k", change("k", 1, 100))
			for fs.ackedCount() < 1 && fs.ctx.Err() == nil { // a call each: the second reshards
				time.Sleep(time.Millisecond)
			}
			fs.put(2, "k", change("k", 2, 100))
			fs.waitAcked()
			want := int64(tc.to) << 10
			for deadline := time.Now().Add(10 * time.Second); fs.s.maxRecord.Load() != want; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("maximum record size %d after the reshard, want %d", fs.s.maxRecord.Load(), want)
				}
			}
			err := fs.s.Put(fs.ctx, sink.Record{Data: change("k", 3, 3*mib), PartitionKey: "k", Seq: 3})
			var over *sink.OversizeError
			switch {
			case want > 3*mib && err != nil:
				t.Fatalf("Put of 3 MiB after the stream was raised to %d: %v", want, err)
			case want < 3*mib && (!errors.As(err, &over) || over.Max != fs.s.maxUserRecord("k") || over.Max > int(want)):
				t.Fatalf("Put of 3 MiB after the stream was lowered to %d = %v, want an OversizeError", want, err)
			}
			fs.drain()
			fs.stop()
			n := 2
			if want > 3*mib {
				n = 3
			}
			fs.checkAckedOnce(n)
			// An aggregate stored on the wrong child is sent again: a KCL
			// consumer drops the first copy, and reads the second.
			recs, _ := f.read()
			checkOrder(t, recs, n)
			if inj := f.faults(); inj.rejected > 0 {
				t.Fatalf("the sink made %d calls past Kinesis' limits", inj.rejected)
			}
		})
	}
}

// A record larger than a second's worth of the shard passes the sink's
// rate limit at once and leaves it in debt: the next record waits until
// the shard made up for it, and the fake, which takes large records as the
// same bursts, throttles nothing.
func TestFakeLargeRecordBurst(t *testing.T) {
	for _, aggregate := range []bool{false, true} {
		t.Run(fmt.Sprintf("aggregate=%t", aggregate), func(t *testing.T) {
			t.Parallel()
			f := newFakeKinesis(1)
			f.setMaxRecordKiB(4096)
			f.limit = &fakeLimit{records: shardRecordsPerSecond, bytes: shardBytesPerSecond}
			fs := startFake(t, f, Config{Aggregate: aggregate, FlushInterval: time.Millisecond}, true)
			start := time.Now()
			fs.put(1, "k", change("k", 1, 3*mib/2))
			fs.put(2, "k", change("k", 2, 3*mib/2))
			fs.drain()
			took := time.Since(start)
			fs.stop()
			fs.checkAckedOnce(2)
			checkStream(t, f, 2)
			inj, st := f.faults(), fs.s.Stats()
			if inj.throttled != 0 || st.Throttles != 0 {
				t.Fatalf("%d records throttled, %d throttling retries: want the sink to wait out the burst", inj.throttled, st.Throttles)
			}
			// 1.5 MiB leaves a debt of 0.5 MiB; the next waits for a full
			// second's worth: 1.5 s at 1 MiB a second.
			if took < 1400*time.Millisecond || st.LimitWait < 1400*time.Millisecond {
				t.Fatalf("two records of 1.5 MiB took %v, %v of it waiting on the limit; want about 1.5 s", took, st.LimitWait)
			}
		})
	}
}

// A record queued while the stream's limit was lowered below it is sent
// all the same (see TestTakeCallBytes for one larger than a call may then
// carry): Kinesis refuses it and the sink stops with an error naming the
// stream, neither hanging nor losing it. On restart Put refuses the change
// and --oversize applies.
func TestFakeLoweredLimitStopsTheSink(t *testing.T) {
	f := newFakeKinesis(1)
	f.setMaxRecordKiB(10240)
	release := make(chan struct{})
	f.beforeOp = func(f *fakeKinesis, call int, _ *kinesis.PutRecordsInput) {
		if call == 1 {
			<-release
			f.split("shardId-000000000000", 500)
			f.maxRecordKiB = 1024
		}
	}
	fs := startFake(t, f, Config{FlushInterval: time.Millisecond, NoShardLimit: true}, true)
	fs.put(1, "k1", change("k1", 1, 100))
	fs.put(2, "k2", change("k2", 2, 8*mib))
	close(release)
	select {
	case err := <-fs.done:
		if err == nil || !strings.Contains(err.Error(), `"fake"`) || !strings.Contains(err.Error(), "ValidationException") {
			t.Fatalf("Run = %v, want Kinesis' refusal naming the stream", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the sink neither sent the record nor stopped")
	}
}

// A record larger than MaxBuffered waits for the whole buffer and goes,
// instead of waiting forever for room the buffer can never have.
func TestFakeLargeRecordOverMaxBuffered(t *testing.T) {
	for _, aggregate := range []bool{false, true} {
		t.Run(fmt.Sprintf("aggregate=%t", aggregate), func(t *testing.T) {
			t.Parallel()
			f := newFakeKinesis(1)
			f.setMaxRecordKiB(4096)
			fs := startFake(t, f, Config{Aggregate: aggregate, FlushInterval: time.Millisecond, NoShardLimit: true, MaxBuffered: mib}, true)
			fs.put(1, "k", change("k", 1, 100))
			fs.put(2, "k", change("k", 2, 3*mib))
			fs.put(3, "k", change("k", 3, 100))
			fs.drain()
			fs.stop()
			fs.checkAckedOnce(3)
			checkStream(t, f, 3)
		})
	}
}
