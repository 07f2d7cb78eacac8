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
// MaxBuffered, the flush interval and Drain.

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

// A partial batch waits for the flush interval, unless Drain asks; a full
// batch (500 plain records, or an aggregate that reached 1 MiB) goes out
// at once.
func TestFakeFlushInterval(t *testing.T) {
	tests := []struct {
		name      string
		aggregate bool
		interval  time.Duration
		n, size   int
		early     int  // acknowledgements to wait for before Drain
		noneEarly bool // nothing may be sent before Drain
	}{
		{"partial aggregate waits for Drain", true, time.Hour, 3, 10, 0, true},
		{"partial plain batch waits for Drain", false, time.Hour, 3, 10, 0, true},
		{"partial aggregate goes out after the interval", true, time.Millisecond, 3, 10, 3, false},
		{"partial plain batch goes out after the interval", false, time.Millisecond, 3, 10, 3, false},
		{"500 plain records go out at once", false, time.Hour, 500, 10, 500, false},
		{"a full aggregate goes out at once", true, time.Hour, 11, 100 << 10, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeKinesis(1)
			fs := startFake(t, f, Config{Aggregate: tt.aggregate, FlushInterval: tt.interval}, true)
			fs.expect(tt.early)
			for seq := uint64(1); seq <= uint64(tt.n); seq++ {
				key := "key-" + strconv.Itoa(int(seq))
				fs.put(seq, key, []byte(fmt.Sprintf("%s|%d|%s", key, seq, strings.Repeat("x", tt.size))))
			}
			if tt.early > 0 {
				fs.waitAcked()
			}
			if tt.noneEarly && (f.callCount() != 0 || fs.ackedCount() != 0) {
				t.Fatalf("%d calls before the flush interval or Drain, want none", f.callCount())
			}
			fs.drain()
			fs.stop()
			fs.checkAckedOnce(tt.n)
			checkStream(t, f, tt.n)
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
