package kinesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis/kpl"
)

// reshardAt is a fake's schedule: which reshard runs before which call.
type reshardAt map[int]func(f *fakeKinesis)

func split(id int, permille int64) func(f *fakeKinesis) {
	return func(f *fakeKinesis) { f.split(fmt.Sprintf("shardId-%012d", id), permille) }
}

func merge(a, b int) func(f *fakeKinesis) {
	return func(f *fakeKinesis) { f.merge(fmt.Sprintf("shardId-%012d", a), fmt.Sprintf("shardId-%012d", b)) }
}

// onDemandUp and onDemandDown scale a fake of four shards as on-demand
// capacity does: every shard split in two at once, then the children
// merged back in pairs.
func onDemandUp(f *fakeKinesis) {
	for i := range 4 {
		split(i, 500)(f)
	}
}

func onDemandDown(f *fakeKinesis) {
	for i := 4; i < 12; i += 2 {
		merge(i, i+1)(f)
	}
}

// Reshards between two calls, against the in-process fake: no user record
// is acknowledged before a KCL consumer can read it (it sits in an
// aggregate on a shard whose range holds all of that aggregate's user
// records, or is a plain record); what a KCL consumer reads holds every
// record, each key's in order; every record is acknowledged once, and the
// buffer, far smaller than the workload, is released exactly (Drain
// returns, a double release would panic). With faults too: a retry must
// neither acknowledge a misplaced aggregate nor lose sight of it.
func TestReshardKeepsRecordsReadableAndInOrder(t *testing.T) {
	tests := []struct {
		name      string
		shards    int
		aggregate bool
		plan      reshardAt
		resent    bool // misplaced user records must be sent again
		faults    bool // calls fail, some after storing, and records are throttled
	}{
		{"split", 1, true, reshardAt{4: split(0, 500)}, true, false},
		{"split then merge", 1, true, reshardAt{4: split(0, 500), 12: merge(1, 2)}, true, false},
		{"merge: the child holds every record", 2, true, reshardAt{4: merge(0, 1)}, false, false},
		{"uneven split of one of four, twice", 4, true, reshardAt{3: split(2, 300), 9: split(5, 800)}, true, false},
		{"split twice in one call, then merge", 1, true, reshardAt{5: func(f *fakeKinesis) { split(0, 500)(f); split(2, 500)(f) }, 15: merge(3, 4)}, true, false},
		{"split then merge, plain records", 1, false, reshardAt{4: split(0, 500), 12: merge(1, 2)}, false, false},
		{"splits and merges of two, with faults", 2, true, reshardAt{5: split(0, 300), 9: split(1, 700), 14: merge(3, 4), 20: split(2, 500), 26: merge(6, 5)}, true, true},
		{"splits and merges of two, with faults, plain records", 2, false, reshardAt{5: split(0, 300), 9: split(1, 700), 14: merge(3, 4), 20: split(2, 500), 26: merge(6, 5)}, false, true},
		// An on-demand stream scales by itself while the sink writes: AWS
		// splits every shard (four, the first capacity, to eight) and
		// later merges the children back, parents closing each time.
		{"on-demand scaling: four doubled, then halved", 4, true, reshardAt{5: onDemandUp, 15: onDemandDown}, true, false},
		{"on-demand scaling, plain records", 4, false, reshardAt{5: onDemandUp, 15: onDemandDown}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const n, keys = 20000, 300
			key := func(seq uint64) string { return fmt.Sprintf("key-%d", seq%keys) }
			data := func(seq uint64) string { return fmt.Sprintf("%s|%d|x", key(seq), seq) }
			f := newFakeKinesis(tt.shards)
			var calls []int
			for call := range tt.plan {
				calls = append(calls, call)
			}
			slices.Sort(calls)
			pending := calls // guarded by f.mu, under which beforeOp runs
			f.beforeOp = func(f *fakeKinesis, call int, in *kinesis.PutRecordsInput) {
				// An op waits, past its call, for an aggregate of many keys:
				// one of a few keys may well fit the child it lands on, and
				// the reshard would then test nothing (CPU starved, the
				// sink sends records almost one by one).
				pause := time.Millisecond // lets records pile up in the queues meanwhile
				if len(pending) > 0 && call >= pending[0] {
					if !tt.aggregate || userRecords(t, in) >= 20 {
						tt.plan[pending[0]](f)
						pending = pending[1:]
					} else {
						pause = 20 * time.Millisecond // the next aggregate will be larger
					}
				}
				time.Sleep(pause)
			}
			var mu sync.Mutex
			acked := map[uint64]int{}
			unreadable := 0
			ack := func(seqs []uint64) {
				for _, seq := range seqs {
					ok := f.isReadable(data(seq))
					mu.Lock()
					acked[seq]++
					if !ok {
						unreadable++
					}
					mu.Unlock()
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if tt.faults {
				f.fault = randomFaults(rand.New(rand.NewSource(1)))
			}
			m := metrics.NewKinesis()
			// Plain records at Kinesis' 1,000 a second per shard would make
			// these wait for seconds; the aggregated cases keep the shard
			// limit on across the reshards.
			s, err := New(ctx, Config{API: f, Stream: ByName("fake"), Aggregate: tt.aggregate, FlushInterval: time.Millisecond,
				MaxBuffered: 32 << 10, MaxBackoff: 10 * time.Millisecond, NoShardLimit: !tt.aggregate, Ack: ack, Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			for seq := uint64(1); seq <= n; seq++ {
				if err := s.Put(ctx, sink.Record{Data: []byte(data(seq)), PartitionKey: key(seq), Seq: seq}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Drain(ctx); err != nil {
				t.Fatalf("Drain: %v (the buffer was not released)", err)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			for seq := uint64(1); seq <= n; seq++ {
				if acked[seq] != 1 {
					t.Fatalf("record %d acknowledged %d times, want once", seq, acked[seq])
				}
			}
			if unreadable > 0 {
				t.Fatalf("%d records acknowledged before a KCL consumer could read them", unreadable)
			}
			if errs := f.orderErrors(); len(errs) > 0 {
				t.Fatalf("the fake stored %d records out of the order they were sent, first: %s", len(errs), errs[0])
			}
			recs, dropped := f.read()
			dups := checkOrder(t, recs, n)
			st := s.Stats()
			t.Logf("%d calls; %d user records sent again; a KCL consumer drops %d and reads %d duplicates", f.calls, st.Rerouted, dropped, dups)
			if len(pending) > 0 {
				t.Fatalf("%d calls: the workload ended before %d of the reshards", f.calls, len(pending))
			}
			if inj := f.faults(); tt.faults && (inj.callErrors == 0 || inj.afterStore == 0 || inj.failedRecords == 0) {
				t.Fatalf("not every fault was injected: %+v", inj)
			}
			if got := testutil.ToFloat64(m.Rerouted); got != float64(st.Rerouted) {
				t.Errorf("kinesis_records_rerouted_total = %v, want %d", got, st.Rerouted)
			}
			if tt.resent != (st.Rerouted > 0) {
				t.Fatalf("%d user records sent again after landing on the wrong shard, want some: %t", st.Rerouted, tt.resent)
			}
		})
	}
}

// userRecords counts the user records of the aggregate a call sends.
func userRecords(t *testing.T, in *kinesis.PutRecordsInput) int {
	users, err := kpl.Decode(in.Records[0].Data)
	if err != nil {
		t.Error(err)
	}
	return len(users)
}

// listFailing is a fake whose ListShards fails from the second call on
// (the first is New's), as during a network cut or a long throttle, and
// says when the sink first tried again.
type listFailing struct {
	*fakeKinesis
	calls   int
	retried chan struct{}
}

func (f *listFailing) ListShards(ctx context.Context, in *kinesis.ListShardsInput, opts ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.calls++ // only New and the one reshard call it, one after the other
	if f.calls == 1 {
		return f.fakeKinesis.ListShards(ctx, in, opts...)
	}
	if f.calls == 2 {
		close(f.retried)
	}
	return nil, errors.New("connection refused")
}

// While the resharded stream's shards cannot be listed, Put still takes
// records as far as MaxBuffered allows, and Put and Drain still answer
// their context: a stop (SIGTERM) does not wait for ListShards to
// recover. The stop ends Run without an error.
func TestReshardListingDoesNotBlockPut(t *testing.T) {
	f := &listFailing{fakeKinesis: newFakeKinesis(1), retried: make(chan struct{})}
	f.beforeOp = func(f *fakeKinesis, call int, _ *kinesis.PutRecordsInput) {
		if call == 1 {
			f.split("shardId-000000000000", 500)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := New(ctx, Config{API: f, Stream: ByName("fake"), Aggregate: true, FlushInterval: time.Millisecond,
		MaxBackoff: 10 * time.Millisecond, Ack: func([]uint64) {}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for seq := uint64(1); seq <= 100; seq++ { // keys on both children: misplaced
		if err := s.Put(ctx, sink.Record{Data: []byte("x"), PartitionKey: fmt.Sprint(seq), Seq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-f.retried:
	case <-time.After(10 * time.Second):
		t.Fatal("no reshard after a misplaced aggregate")
	}
	put := make(chan error, 1)
	go func() { put <- s.Put(ctx, sink.Record{Data: []byte("x"), PartitionKey: "k", Seq: 101}) }()
	select {
	case err := <-put:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Put blocked while the sink retried ListShards")
	}
	dctx, dcancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer dcancel()
	drained := make(chan error, 1)
	go func() { drained <- s.Drain(dctx) }()
	select {
	case err := <-drained:
		if err == nil {
			t.Fatal("Drain = nil with records that cannot be sent")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain outlived its context while the sink retried ListShards")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v after its context ended, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

// randomFaults fails one call in ten before it reaches the stream and one
// in ten after the stream stored its records (a cut connection: the sender
// cannot know), and throttles every other record of one call in ten.
func randomFaults(rnd *rand.Rand) func(int, *kinesis.PutRecordsInput) fakeFault {
	return func(int, *kinesis.PutRecordsInput) fakeFault { // under the fake's mutex
		switch rnd.Intn(10) {
		case 0:
			return fakeFault{err: errors.New("connection reset before the call")}
		case 1:
			return fakeFault{err: errors.New("connection reset after the call"), afterStore: true}
		case 2:
			return fakeFault{failRecord: func(i int) string {
				if i%2 == 0 {
					return codeThroughput
				}
				return ""
			}}
		}
		return fakeFault{}
	}
}
