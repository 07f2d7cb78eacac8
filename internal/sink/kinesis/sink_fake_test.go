package kinesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
)

// The sink's logic against the in-process fake (fake_test.go): these
// tests need no service and are never skipped. The kinesalite tests
// (sink_test.go) prove the same against the real protocol.

// fakeSink is a sink running against a fake, counting acknowledgements.
type fakeSink struct {
	t      *testing.T
	f      *fakeKinesis
	s      *Sink
	ctx    context.Context
	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	acked   map[uint64]int
	want    int           // acknowledgements that close reached
	reached chan struct{} // closed once want records are acknowledged
}

// startFake starts a sink on f; cfg's API and Ack are filled in. With run
// false, Run is not started (nothing is sent).
func startFake(t *testing.T, f *fakeKinesis, cfg Config, run bool) *fakeSink {
	t.Helper()
	fs := &fakeSink{t: t, f: f, acked: map[uint64]int{}, reached: make(chan struct{}), done: make(chan error, 1)}
	fs.ctx, fs.cancel = context.WithTimeout(context.Background(), 2*time.Minute) // a guard against a hang, not a measure
	t.Cleanup(fs.cancel)
	if cfg.API == nil {
		cfg.API = f
	}
	cfg.Stream = ByName("fake")
	cfg.Ack = fs.ack
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 5 * time.Millisecond
	}
	s, err := New(fs.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fs.s = s
	if run {
		go func() { fs.done <- s.Run(fs.ctx) }()
	} else {
		fs.done <- nil
	}
	return fs
}

func (fs *fakeSink) ack(seqs []uint64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, seq := range seqs {
		fs.acked[seq]++
		if len(fs.acked) == fs.want {
			close(fs.reached)
		}
	}
}

// expect sets how many distinct acknowledgements waitAcked waits for.
// Call it before the first of them can happen.
func (fs *fakeSink) expect(n int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.want = n
}

func (fs *fakeSink) waitAcked() {
	fs.t.Helper()
	select {
	case <-fs.reached:
	case <-fs.ctx.Done():
		fs.t.Fatalf("%d records acknowledged, want %d", fs.ackedCount(), fs.want)
	}
}

func (fs *fakeSink) ackedCount() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.acked)
}

func (fs *fakeSink) put(seq uint64, key string, data []byte) {
	fs.t.Helper()
	if err := fs.s.Put(fs.ctx, sink.Record{Data: data, PartitionKey: key, Seq: seq}); err != nil {
		fs.t.Fatalf("Put %d: %v", seq, err)
	}
}

func (fs *fakeSink) drain() {
	fs.t.Helper()
	if err := fs.s.Drain(fs.ctx); err != nil {
		fs.t.Fatalf("Drain: %v (acked %d)", err, fs.ackedCount())
	}
}

// stop ends Run and fails the test if Run failed.
func (fs *fakeSink) stop() {
	fs.t.Helper()
	fs.cancel()
	if err := <-fs.done; err != nil {
		fs.t.Fatalf("Run: %v", err)
	}
}

// checkAckedOnce fails unless records 1..n were each acknowledged once.
func (fs *fakeSink) checkAckedOnce(n int) {
	fs.t.Helper()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	checkOnce(fs.t, fs.acked, n)
}

// checkOnce fails unless acked (acknowledgements by sequence number)
// holds records 1..n, each once. Caller holds the lock that guards acked.
func checkOnce(t *testing.T, acked map[uint64]int, n int) {
	t.Helper()
	for seq := uint64(1); seq <= uint64(n); seq++ {
		if acked[seq] != 1 {
			t.Fatalf("record %d acknowledged %d times, want once", seq, acked[seq])
		}
	}
	if len(acked) != n {
		t.Fatalf("%d records acknowledged, want %d", len(acked), n)
	}
}

// checkStream checks what a consumer reads from the fake: every record of
// 1..n, each key's in order (checkOrder), the fake's own per-key order
// check clean, no call past Kinesis' limits. It returns the duplicates.
func checkStream(t *testing.T, f *fakeKinesis, n int) (dups int, shards map[string]bool) {
	t.Helper()
	if errs := f.orderErrors(); len(errs) > 0 {
		t.Fatalf("the fake stored %d records out of the order they were sent, first: %s", len(errs), errs[0])
	}
	if inj := f.faults(); inj.rejected > 0 {
		t.Fatalf("the sink made %d calls past Kinesis' limits", inj.rejected)
	}
	recs, dropped := f.read()
	if dropped > 0 {
		t.Fatalf("a KCL consumer drops %d user records", dropped)
	}
	shards = map[string]bool{}
	for _, r := range recs {
		shards[r.ShardID] = true
	}
	return checkOrder(t, recs, n), shards
}

// workload is n records over keys keys picked at random (each record its
// own key if keys == n), each "key|seq|padding" with a padding of 0 to
// maxPad bytes.
func workload(n, keys, maxPad int) func(seq uint64) (string, []byte) {
	rng := rand.New(rand.NewPCG(7, 7))
	pads := make([]int, n+1)
	ks := make([]int, n+1)
	for i := range pads {
		pads[i], ks[i] = rng.IntN(maxPad+1), rng.IntN(keys)
		if keys == n {
			ks[i] = i
		}
	}
	return func(seq uint64) (string, []byte) {
		key := "key-" + strconv.Itoa(ks[seq])
		return key, []byte(fmt.Sprintf("%s|%d|%s", key, seq, strings.Repeat("x", pads[seq])))
	}
}

func putAll(fs *fakeSink, n int, w func(uint64) (string, []byte)) {
	fs.t.Helper()
	for seq := uint64(1); seq <= uint64(n); seq++ {
		key, data := w(seq)
		fs.put(seq, key, data)
	}
}

func TestFakeDeliversEveryRecordInOrderPerKey(t *testing.T) {
	tests := []struct {
		name            string
		aggregate       bool
		shards, n, keys int
		maxPad          int
		maxBuffered     int
		wantEveryShard  bool
		hold            bool // the first call waits until every record is put: a backlog
	}{
		{"aggregated, 4 shards", true, 4, 3000, 40, 300, 0, true, false},
		{"plain, 4 shards", false, 4, 3000, 40, 300, 0, true, false},
		{"aggregated, 16 shards, many keys, small buffer", true, 16, 5000, 1000, 100, 64 << 10, true, false},
		{"plain, 16 shards, many keys, small buffer", false, 16, 5000, 1000, 100, 64 << 10, true, false},
		{"aggregated, one key", true, 3, 2000, 1, 50, 0, false, false},
		{"plain, one key", false, 3, 500, 1, 50, 0, false, false},
		// 600 keys of up to 40 KiB on one shard, held back while all are
		// put (about 12 MiB): the backlog is split into calls within 5 MiB.
		{"plain, large records past 5 MiB a call", false, 1, 600, 600, 40 << 10, 64 << 20, true, true},
		{"aggregated, large records past 1 MiB an aggregate", true, 2, 600, 50, 40 << 10, 64 << 20, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeKinesis(tt.shards)
			release := make(chan struct{})
			if tt.hold {
				f.beforeOp = func(_ *fakeKinesis, call int, _ *kinesis.PutRecordsInput) {
					if call == 1 {
						<-release
					}
				}
			} else {
				close(release)
			}
			// 12 MiB at Kinesis' 1 MiB a second per shard would take as many
			// seconds: the large records go without the shard limit.
			fs := startFake(t, f, Config{Aggregate: tt.aggregate, FlushInterval: time.Millisecond, MaxBuffered: tt.maxBuffered,
				NoShardLimit: tt.hold}, true)
			putAll(fs, tt.n, workload(tt.n, tt.keys, tt.maxPad))
			if tt.hold {
				close(release)
			}
			fs.drain()
			fs.stop()
			fs.checkAckedOnce(tt.n)
			dups, shards := checkStream(t, f, tt.n)
			if dups != 0 {
				t.Fatalf("%d duplicates without any fault", dups)
			}
			if tt.wantEveryShard && len(shards) != tt.shards {
				t.Fatalf("records landed on %d shards, want all %d", len(shards), tt.shards)
			}
		})
	}
}

// Whole-call errors of every kind the sink retries.
var (
	errThrottled   = &types.ProvisionedThroughputExceededException{Message: aws.String("Rate exceeded for shard")}
	errLimit       = &types.LimitExceededException{Message: aws.String("Rate exceeded")}
	err5xx         = httpError(503, &smithy.GenericAPIError{Code: "ServiceUnavailable"})
	errInternal    = httpError(500, &smithy.GenericAPIError{Code: "InternalFailure"})
	errReset       = errors.New("read tcp 127.0.0.1:4567: connection reset by peer")
	errUnavailable = errors.New("dial tcp 127.0.0.1:4567: connection refused")
)

// Partial failures, throttling, 5xx and network errors before and after
// the records are stored: nothing is lost, no key is reordered, every
// record is acknowledged once; only a call cut after storing makes
// duplicates.
func TestFakeFaultsLoseNothingAndNeverReorder(t *testing.T) {
	failEvery := func(m int, code string) func(call int) func(int) string {
		return func(call int) func(int) string {
			return func(i int) string {
				if (call+i)%m == 0 {
					return code
				}
				return ""
			}
		}
	}
	tests := []struct {
		name       string
		fault      func(call int) fakeFault // for calls before the 300th; then none
		wantDups   bool
		wantThrott bool
		check      func(fakeInjected) bool
	}{
		{"records throttled", func(call int) fakeFault {
			return fakeFault{failRecord: failEvery(3, codeThroughput)(call)}
		}, false, true, func(i fakeInjected) bool { return i.failedRecords > 0 }},
		{"records failed internally", func(call int) fakeFault {
			return fakeFault{failRecord: failEvery(2, codeInternal)(call)}
		}, false, false, func(i fakeInjected) bool { return i.failedRecords > 0 }},
		{"calls throttled", func(call int) fakeFault {
			if call%2 == 0 {
				return fakeFault{err: errThrottled}
			}
			if call%5 == 0 {
				return fakeFault{err: errLimit}
			}
			return fakeFault{}
		}, false, true, func(i fakeInjected) bool { return i.callErrors > 0 }},
		{"5xx", func(call int) fakeFault {
			if call%3 == 0 {
				return fakeFault{err: err5xx}
			}
			if call%3 == 1 {
				return fakeFault{err: errInternal}
			}
			return fakeFault{}
		}, false, false, func(i fakeInjected) bool { return i.callErrors > 0 }},
		{"connection refused", func(call int) fakeFault {
			if call%2 == 0 {
				return fakeFault{err: errUnavailable}
			}
			return fakeFault{}
		}, false, false, func(i fakeInjected) bool { return i.callErrors > 0 }},
		{"connection cut after storing", func(call int) fakeFault {
			if call%3 == 0 {
				return fakeFault{err: errReset, afterStore: true}
			}
			return fakeFault{}
		}, true, false, func(i fakeInjected) bool { return i.afterStore > 0 }},
		{"everything", func(call int) fakeFault {
			switch call % 7 {
			case 0:
				return fakeFault{failRecord: failEvery(3, codeThroughput)(call)}
			case 1:
				return fakeFault{err: errThrottled}
			case 2:
				return fakeFault{err: errUnavailable}
			case 3:
				return fakeFault{err: errReset, afterStore: true}
			case 5:
				return fakeFault{failRecord: failEvery(2, codeInternal)(call)}
			}
			return fakeFault{}
		}, true, true, func(i fakeInjected) bool {
			return i.failedRecords > 0 && i.callErrors > 0 && i.afterStore > 0
		}},
	}
	for _, tt := range tests {
		for _, aggregate := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/aggregate=%t", tt.name, aggregate), func(t *testing.T) {
				t.Parallel()
				const n, keys, shards = 3000, 40, 4
				f := newFakeKinesis(shards)
				f.fault = func(call int, _ *kinesis.PutRecordsInput) fakeFault {
					if call >= 300 {
						return fakeFault{}
					}
					return tt.fault(call)
				}
				fs := startFake(t, f, Config{Aggregate: aggregate, FlushInterval: time.Millisecond, MaxBuffered: 32 << 10}, true)
				putAll(fs, n, workload(n, keys, 100))
				fs.drain()
				fs.stop()
				fs.checkAckedOnce(n)
				dups, _ := checkStream(t, f, n)
				inj, st := f.faults(), fs.s.Stats()
				t.Logf("%d calls, injected %+v, %d retries (%d throttles), %d duplicates", f.callCount(), inj, st.Retries, st.Throttles, dups)
				if !tt.check(inj) {
					t.Fatalf("the faults were not injected: %+v", inj)
				}
				if st.Retries == 0 {
					t.Fatal("no retry counted")
				}
				if tt.wantThrott != (st.Throttles > 0) {
					t.Fatalf("%d throttles counted, want some: %t", st.Throttles, tt.wantThrott)
				}
				if !tt.wantDups && dups > 0 {
					t.Fatalf("%d duplicates, with no call failing after storing", dups)
				}
			})
		}
	}
}
