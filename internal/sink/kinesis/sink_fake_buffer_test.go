package kinesis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
)

// The sink's limits and timing against the fake: oversize records,
// MaxBuffered, adaptive batching and Drain.

// A record too large for one Kinesis record is refused by Put with an
// OversizeError; the largest that fits is accepted by Put and by Kinesis
// (the fake rejects a record past 1 MiB with its key, and the sink would
// stop).
func TestFakeOversizeRecord(t *testing.T) {
	for _, tc := range []struct {
		aggregate bool
		pk        string
	}{
		{true, "k"}, {false, "k"},
		{true, strings.Repeat("k", 256)}, {false, strings.Repeat("k", 256)},
	} {
		t.Run(fmt.Sprintf("aggregate=%t/key of %d", tc.aggregate, len(tc.pk)), func(t *testing.T) {
			t.Parallel()
			f := newFakeKinesis(1)
			fs := startFake(t, f, Config{Aggregate: tc.aggregate, FlushInterval: time.Millisecond}, true)
			max := fs.s.maxUserRecord(tc.pk)
			for _, size := range []int{1 << 20, max - len(tc.pk) + 1} {
				err := fs.s.Put(fs.ctx, sink.Record{Data: make([]byte, size), PartitionKey: tc.pk, Seq: 1})
				var over *sink.OversizeError
				if !errors.As(err, &over) || over.Size != size+len(tc.pk) || over.Max != max {
					t.Fatalf("Put of %d bytes and a key of %d = %v, want an OversizeError of %d over %d", size, len(tc.pk), err, size+len(tc.pk), max)
				}
			}
			fs.put(1, tc.pk, make([]byte, max-len(tc.pk)))
			fs.drain()
			fs.stop()
			fs.checkAckedOnce(1)
			if inj := f.faults(); inj.rejected > 0 || f.callCount() != 1 {
				t.Fatalf("%d calls, %d rejected, want the record stored in one call", f.callCount(), inj.rejected)
			}
		})
	}
}

// Put blocks once MaxBuffered bytes (data, key and bookkeeping) wait
// unacknowledged, and resumes when acknowledgements release them.
func TestFakeMaxBuffered(t *testing.T) {
	for _, tc := range []struct {
		aggregate bool
		overhead  int
	}{{true, aggregatedOverhead}, {false, plainOverhead}} {
		t.Run(fmt.Sprintf("aggregate=%t", tc.aggregate), func(t *testing.T) {
			t.Parallel()
			const n, data = 10, 10
			held := data + len("k") + tc.overhead
			f := newFakeKinesis(1)
			// Calls reach the fake but are answered only once release is
			// closed: nothing is acknowledged meanwhile.
			release := make(chan struct{})
			var once sync.Once
			open := func() { once.Do(func() { close(release) }) }
			t.Cleanup(open)
			f.beforeOp = func(*fakeKinesis, int, *kinesis.PutRecordsInput) { <-release }
			fs := startFake(t, f, Config{Aggregate: tc.aggregate, FlushInterval: time.Millisecond, MaxBuffered: n * held}, true)
			for seq := uint64(1); seq <= n; seq++ {
				fs.put(seq, "k", make([]byte, data))
			}
			if fs.s.buffer.TryAcquire(1) {
				t.Fatalf("%d records of %d bytes held: the buffer of %d has room left", n, held, n*held)
			}
			ctx, cancel := context.WithTimeout(fs.ctx, 50*time.Millisecond)
			err := fs.s.Put(ctx, sink.Record{Data: make([]byte, data), PartitionKey: "k", Seq: n + 1})
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Put into a full buffer = %v, want it to wait until its context ends", err)
			}
			blocked := make(chan error, 1)
			go func() {
				blocked <- fs.s.Put(fs.ctx, sink.Record{Data: make([]byte, data), PartitionKey: "k", Seq: n + 1})
			}()
			select {
			case err := <-blocked:
				t.Fatalf("Put into a full buffer returned %v before any acknowledgement", err)
			default:
			}
			if fs.ackedCount() != 0 {
				t.Fatal("acknowledged before Kinesis answered")
			}
			open()
			if err := <-blocked; err != nil {
				t.Fatalf("Put after acknowledgements released the buffer: %v", err)
			}
			fs.drain()
			fs.stop()
			fs.checkAckedOnce(n + 1)
		})
	}
}

// Adaptive batching: a shard with no request in flight sends at once,
// however long the flush interval; while a request is in flight, what Put
// adds waits and goes out together in the next call.
func TestFakeAdaptiveBatching(t *testing.T) {
	for _, aggregate := range []bool{true, false} {
		t.Run(fmt.Sprintf("a lone record on an idle shard goes out at once/aggregate=%t", aggregate), func(t *testing.T) {
			t.Parallel()
			f := newFakeKinesis(1)
			fs := startFake(t, f, Config{Aggregate: aggregate, FlushInterval: time.Hour}, true)
			fs.expect(1)
			fs.put(1, "k", []byte("k|1"))
			// Acknowledged with no Drain and long before the interval: the
			// 10 s are a guard for a slow machine, not a measure.
			select {
			case <-fs.reached:
			case <-time.After(10 * time.Second):
				t.Fatal("a record on an idle shard was not sent within 10 s, with a flush interval of an hour")
			}
			if n := f.callCount(); n != 1 {
				t.Fatalf("%d calls, want 1", n)
			}
			fs.drain()
			fs.stop()
			fs.checkAckedOnce(1)
		})
		t.Run(fmt.Sprintf("records put while a call is in flight go out together next/aggregate=%t", aggregate), func(t *testing.T) {
			t.Parallel()
			const n = 50
			f := newFakeKinesis(1)
			arrived, release := make(chan struct{}), make(chan struct{})
			f.beforeOp = func(_ *fakeKinesis, call int, _ *kinesis.PutRecordsInput) {
				if call == 1 {
					close(arrived)
					<-release
				}
			}
			fs := startFake(t, f, Config{Aggregate: aggregate, FlushInterval: time.Hour}, true)
			fs.expect(n)
			fs.put(1, "key-1", []byte("key-1|1"))
			<-arrived // the first record is in flight, alone
			for seq := uint64(2); seq <= n; seq++ {
				key := "key-" + strconv.Itoa(int(seq))
				fs.put(seq, key, []byte(fmt.Sprintf("%s|%d", key, seq)))
			}
			close(release)
			fs.waitAcked()
			fs.drain()
			fs.stop()
			// Read once the senders have stopped: a call's records are
			// acknowledged before its figures are added to the stats.
			st := fs.s.Stats()
			wantKinesis := n // plain: one Kinesis record each
			if aggregate {
				wantKinesis = 2 // the lone record's aggregate, then one of all the others
			}
			if f.callCount() != 2 || st.KinesisRecords != wantKinesis {
				t.Fatalf("%d calls, %d Kinesis records; want 2 calls (one record alone, then the %d put meanwhile), %d Kinesis records",
					f.callCount(), st.KinesisRecords, n-1, wantKinesis)
			}
			fs.checkAckedOnce(n)
			checkStream(t, f, n)
		})
	}
}

// Drain waits until everything is acknowledged, however long Kinesis
// fails; it returns when its context ends or when Run has stopped.
func TestFakeDrain(t *testing.T) {
	t.Run("nothing buffered", func(t *testing.T) {
		t.Parallel()
		fs := startFake(t, newFakeKinesis(1), Config{FlushInterval: time.Hour}, true)
		fs.drain()
		fs.stop()
	})
	t.Run("waits through failures", func(t *testing.T) {
		t.Parallel()
		f := newFakeKinesis(2)
		f.fault = func(call int, _ *kinesis.PutRecordsInput) fakeFault {
			if call <= 30 {
				return fakeFault{err: errUnavailable}
			}
			return fakeFault{}
		}
		fs := startFake(t, f, Config{Aggregate: true, FlushInterval: time.Hour}, true)
		putAll(fs, 100, workload(100, 10, 10))
		fs.drain()
		fs.stop()
		fs.checkAckedOnce(100)
		if inj := f.faults(); inj.callErrors != 30 {
			t.Fatalf("%d calls failed, want 30", inj.callErrors)
		}
	})
	t.Run("ends with its context while Kinesis fails", func(t *testing.T) {
		t.Parallel()
		f := newFakeKinesis(1)
		failing := make(chan struct{})
		f.fault = func(call int, _ *kinesis.PutRecordsInput) fakeFault {
			if call == 3 {
				close(failing)
			}
			return fakeFault{err: errUnavailable}
		}
		fs := startFake(t, f, Config{FlushInterval: time.Hour}, true)
		fs.put(1, "k", []byte("x"))
		ctx, cancel := context.WithCancel(fs.ctx)
		go func() { <-failing; cancel() }()
		if err := fs.s.Drain(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Drain = %v, want it to end with its context", err)
		}
		fs.stop()
		if fs.ackedCount() != 0 {
			t.Fatal("a record acknowledged that Kinesis never stored")
		}
	})
	t.Run("ends when Run stops on a fatal error", func(t *testing.T) {
		t.Parallel()
		f := newFakeKinesis(1)
		f.fault = func(int, *kinesis.PutRecordsInput) fakeFault {
			return fakeFault{err: &types.ResourceNotFoundException{Message: aws.String("Stream fake not found")}}
		}
		fs := startFake(t, f, Config{FlushInterval: time.Hour}, true)
		fs.put(1, "k", []byte("x"))
		if err := fs.s.Drain(fs.ctx); err == nil || fs.ctx.Err() != nil {
			t.Fatalf("Drain = %v after Run stopped, want an error before the test's deadline", err)
		}
		var nf *types.ResourceNotFoundException
		if err := <-fs.done; !errors.As(err, &nf) {
			t.Fatalf("Run = %v, want the missing stream", err)
		}
		if fs.ackedCount() != 0 {
			t.Fatal("a record acknowledged that Kinesis never stored")
		}
	})
}
