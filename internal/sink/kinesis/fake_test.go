package kinesis

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis/kpl"
)

// fakeKinesis is an in-process stream behind the sink's API: it places
// records as Kinesis does (explicit hash key, else MD5 of the partition
// key, against the open shards) and answers with each record's ShardId.
// It does on demand what kinesalite cannot: it is resharded between two
// calls, fails calls (before or after storing their records) and single
// records (see fakeFault), and rejects a call past Kinesis' limits as
// Kinesis does, with a ValidationException or InvalidArgumentException
// (the sink takes both for fatal: a sink that builds such a call stops).
// It remembers which user records a KCL consumer can read (see
// kpl.DecodeInShard) and checks, as they are stored, that the readable
// records of each partition key arrive in the order they were first sent
// (duplicates allowed): see orderErrors.
type fakeKinesis struct {
	mu       sync.Mutex
	shards   []*fakeShard // in creation order, so parents come before children
	calls    int
	beforeOp func(f *fakeKinesis, call int, in *kinesis.PutRecordsInput) // runs under mu before each PutRecords: reshards
	// fault, when set, says what goes wrong with each call (counted from
	// 1). It runs under mu, after the call passed the limits.
	fault    func(call int, in *kinesis.PutRecordsInput) fakeFault
	readable map[string]bool // user record data a KCL consumer gets
	// limit, when set, is each shard's write limit, enforced per record
	// as Kinesis does: a record past it is answered
	// ProvisionedThroughputExceededException, not stored (see admit).
	limit *fakeLimit
	// now is the limit's clock: time.Now unless a test sets one, so that
	// what a shard admits does not depend on how fast the test runs.
	now func() time.Time
	// maxRecordKiB is the stream's maximum record size, as
	// DescribeStreamSummary reports it and PutRecords enforces it (see
	// checkLimits); 0: not reported, 1 MiB, as for a stream never raised.
	maxRecordKiB int32
	biggestCall  int // the most bytes (data and keys) one call carried
	// bare skips the per-user-record bookkeeping (decoding, readability,
	// order) so that a benchmark measures the sink, not the fake: records
	// are still checked against the limits, placed and answered.
	bare bool

	injected  fakeInjected
	firstSent map[string]int // partition key + data of a user record: when the sink first sent it
	sent      int
	stored    map[string]bool // user records (key + data) a KCL consumer can read
	lastOf    map[string]int  // per partition key: firstSent of the last record stored
	orderErrs []string
}

// fakeFault is what goes wrong with one PutRecords call.
type fakeFault struct {
	// err fails the whole call: before anything is stored, or, with
	// afterStore, once every record was stored (a connection cut after
	// the call: the sender cannot know it succeeded).
	err        error
	afterStore bool
	// failRecord, when set, fails record i of the call with the error
	// code it returns (none for ""): the record is not stored, and the
	// answer counts it in FailedRecordCount.
	failRecord func(i int) string
}

// fakeInjected counts what the fake did to the sink's calls.
type fakeInjected struct {
	callErrors, afterStore, failedRecords, rejected int
	throttled                                       int // records past a shard's limit (fakeKinesis.limit)
}

// Error codes Kinesis answers for a record it did not store.
const (
	codeThroughput = "ProvisionedThroughputExceededException"
	codeInternal   = "InternalFailure"
)

type fakeShard struct {
	kpl.Shard
	parents []string
	closed  bool
	recs    []types.PutRecordsRequestEntry
	stored  int // records placed by a bare fake, which keeps none

	// What the shard may still take under fakeKinesis.limit, as of at.
	records, bytes float64
	at             time.Time
}

var _ API = (*fakeKinesis)(nil)

// newFakeKinesis is a stream of n shards of equal ranges.
func newFakeKinesis(n int) *fakeKinesis {
	f := &fakeKinesis{readable: map[string]bool{}, firstSent: map[string]int{}, stored: map[string]bool{}, lastOf: map[string]int{}}
	step := new(big.Int).Div(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(int64(n)))
	for i := 0; i < n; i++ {
		start := new(big.Int).Mul(step, big.NewInt(int64(i)))
		end := new(big.Int).Sub(new(big.Int).Add(start, step), big.NewInt(1))
		if i == n-1 {
			end = bigOf(kpl.MaxHash)
		}
		f.add(hashOf(start), hashOf(end))
	}
	return f
}

func bigOf(h kpl.Hash) *big.Int { b, _ := new(big.Int).SetString(h.String(), 10); return b }

func hashOf(b *big.Int) kpl.Hash {
	h, err := kpl.ParseHash(b.String())
	if err != nil {
		panic(err)
	}
	return h
}

func (f *fakeKinesis) add(start, end kpl.Hash, parents ...string) {
	id := fmt.Sprintf("shardId-%012d", len(f.shards))
	f.shards = append(f.shards, &fakeShard{Shard: kpl.Shard{ID: id, Start: start, End: end}, parents: parents})
}

func (f *fakeKinesis) shard(id string) *fakeShard {
	for _, sh := range f.shards {
		if sh.ID == id {
			return sh
		}
	}
	panic("no shard " + id)
}

// split closes shard id into two children, the second starting at the
// given fraction (in 1/1000) of its range. Caller holds f.mu.
func (f *fakeKinesis) split(id string, permille int64) {
	sh := f.shard(id)
	sh.closed = true
	width := new(big.Int).Sub(bigOf(sh.End), bigOf(sh.Start))
	at := new(big.Int).Add(bigOf(sh.Start), new(big.Int).Div(new(big.Int).Mul(width, big.NewInt(permille)), big.NewInt(1000)))
	f.add(sh.Start, hashOf(new(big.Int).Sub(at, big.NewInt(1))), id)
	f.add(hashOf(at), sh.End, id)
}

// merge closes two adjacent shards into one child. Caller holds f.mu.
func (f *fakeKinesis) merge(a, b string) {
	lo, hi := f.shard(a), f.shard(b)
	lo.closed, hi.closed = true, true
	f.add(lo.Start, hi.End, a, b)
}

func (f *fakeKinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.beforeOp != nil {
		f.beforeOp(f, f.calls, in)
	}
	if err := f.checkLimits(in); err != nil {
		f.injected.rejected++
		return nil, err
	}
	if f.bare {
		return f.place(in)
	}
	for _, r := range in.Records {
		users, err := kpl.Decode(r.Data)
		if err != nil {
			return nil, &types.InvalidArgumentException{Message: aws.String(err.Error())}
		}
		for _, u := range users {
			id := userID(u, r)
			if _, ok := f.firstSent[id]; !ok {
				f.sent++
				f.firstSent[id] = f.sent
			}
		}
	}
	var fault fakeFault
	if f.fault != nil {
		fault = f.fault(f.calls, in)
	}
	if fault.err != nil && !fault.afterStore {
		f.injected.callErrors++
		return nil, fault.err
	}
	out := &kinesis.PutRecordsOutput{}
	for i, r := range in.Records {
		if fault.failRecord != nil {
			if code := fault.failRecord(i); code != "" {
				f.injected.failedRecords++
				out.FailedRecordCount = aws.Int32(aws.ToInt32(out.FailedRecordCount) + 1)
				out.Records = append(out.Records, types.PutRecordsResultEntry{ErrorCode: aws.String(code),
					ErrorMessage: aws.String("fakeKinesis: " + code)})
				continue
			}
		}
		h := kpl.HashKey(aws.ToString(r.PartitionKey))
		if r.ExplicitHashKey != nil {
			var err error
			if h, err = kpl.ParseHash(*r.ExplicitHashKey); err != nil {
				return nil, &types.InvalidArgumentException{Message: aws.String(err.Error())}
			}
		}
		sh := f.openShard(h)
		if f.limit != nil && !sh.admit(f.limit, f.clock(), len(r.Data)+len(aws.ToString(r.PartitionKey))) {
			f.injected.throttled++
			out.FailedRecordCount = aws.Int32(aws.ToInt32(out.FailedRecordCount) + 1)
			out.Records = append(out.Records, types.PutRecordsResultEntry{ErrorCode: aws.String(codeThroughput),
				ErrorMessage: aws.String("fakeKinesis: Rate exceeded for shard " + sh.ID)})
			continue
		}
		sh.recs = append(sh.recs, r)
		users, _, err := kpl.DecodeInShard(r.Data, sh.Shard)
		if err != nil {
			return nil, &types.InvalidArgumentException{Message: aws.String(err.Error())}
		}
		for _, u := range users {
			f.readable[string(u.Data)] = true
			f.checkOrder(u, r)
		}
		out.Records = append(out.Records, types.PutRecordsResultEntry{ShardId: aws.String(sh.ID),
			SequenceNumber: aws.String(strconv.Itoa(len(sh.recs)))})
	}
	if fault.err != nil {
		f.injected.afterStore++
		return nil, fault.err
	}
	return out, nil
}

// userID names a user record: its partition key and data.
func userID(u kpl.UserRecord, r types.PutRecordsRequestEntry) string {
	return userKey(u, r) + "\x00" + string(u.Data)
}

func userKey(u kpl.UserRecord, r types.PutRecordsRequestEntry) string {
	if u.PartitionKey != "" {
		return u.PartitionKey
	}
	return aws.ToString(r.PartitionKey)
}

// checkOrder notes a readable user record just stored: the first copy of
// each must come after the first copies of the records of its key sent
// before it. Caller holds f.mu.
func (f *fakeKinesis) checkOrder(u kpl.UserRecord, r types.PutRecordsRequestEntry) {
	id := userID(u, r)
	if f.stored[id] {
		return // a duplicate: allowed
	}
	f.stored[id] = true
	pk, sent := userKey(u, r), f.firstSent[id]
	if sent < f.lastOf[pk] {
		f.orderErrs = append(f.orderErrs, fmt.Sprintf("key %q: record %q, sent %dth, stored after one sent %dth", pk, u.Data, sent, f.lastOf[pk]))
	}
	f.lastOf[pk] = sent
}

// orderErrors lists the records stored out of the order they were first
// sent in, per partition key.
func (f *fakeKinesis) orderErrors() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.orderErrs)
}

// faults returns what the fake injected so far.
func (f *fakeKinesis) faults() fakeInjected {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected
}

// callCount is how many PutRecords calls the fake received.
func (f *fakeKinesis) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeKinesis) openShard(h kpl.Hash) *fakeShard {
	for _, sh := range f.shards {
		if !sh.closed && sh.Covers(h) {
			return sh
		}
	}
	panic("no open shard holds " + h.String())
}

func (f *fakeKinesis) ListShards(ctx context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &kinesis.ListShardsOutput{}
	for _, sh := range f.shards {
		s := types.Shard{ShardId: aws.String(sh.ID),
			HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(sh.Start.String()), EndingHashKey: aws.String(sh.End.String())},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("0")}}
		if sh.closed {
			s.SequenceNumberRange.EndingSequenceNumber = aws.String(strconv.Itoa(len(sh.recs)))
		}
		if len(sh.parents) > 0 {
			s.ParentShardId = aws.String(sh.parents[0])
		}
		if len(sh.parents) > 1 {
			s.AdjacentParentShardId = aws.String(sh.parents[1])
		}
		out.Shards = append(out.Shards, s)
	}
	return out, nil
}

// isReadable reports whether a KCL consumer can read the user record data.
func (f *fakeKinesis) isReadable(data string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readable[data]
}

// read is what a KCL consumer reads, shard after shard in creation order
// (each parent before its children), de-aggregated and filtered.
func (f *fakeKinesis) read() (recs []TailRecord, dropped int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, sh := range f.shards {
		for _, r := range sh.recs {
			users, d, err := kpl.DecodeInShard(r.Data, sh.Shard)
			if err != nil {
				panic(err)
			}
			dropped += d
			for _, u := range users {
				pk := u.PartitionKey
				if pk == "" {
					pk = aws.ToString(r.PartitionKey)
				}
				recs = append(recs, TailRecord{ShardID: sh.ID, PartitionKey: pk, Data: u.Data})
			}
		}
	}
	return recs, dropped
}

func (f *fakeKinesis) clock() time.Time {
	if f.now != nil {
		return f.now()
	}
	return time.Now()
}
