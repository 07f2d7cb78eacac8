package kinesis

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis/kpl"
)

// fakeKinesis is an in-process stream behind the sink's API: it places
// records as Kinesis does (explicit hash key, else MD5 of the partition
// key, against the open shards) and can be resharded between two calls,
// which kinesalite cannot be made to do at an exact moment. It remembers
// which user records a KCL consumer can read (see kpl.DecodeInShard).
type fakeKinesis struct {
	mu       sync.Mutex
	shards   []*fakeShard // in creation order, so parents come before children
	calls    int
	beforeOp func(f *fakeKinesis, call int, in *kinesis.PutRecordsInput) // runs under mu before each PutRecords: reshards
	readable map[string]bool                                             // user record data a KCL consumer gets
}

type fakeShard struct {
	kpl.Shard
	parents []string
	closed  bool
	recs    []types.PutRecordsRequestEntry
}

var _ API = (*fakeKinesis)(nil)

// newFakeKinesis is a stream of n shards of equal ranges.
func newFakeKinesis(n int) *fakeKinesis {
	f := &fakeKinesis{readable: map[string]bool{}}
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
	out := &kinesis.PutRecordsOutput{}
	for _, r := range in.Records {
		h := kpl.HashKey(aws.ToString(r.PartitionKey))
		if r.ExplicitHashKey != nil {
			var err error
			if h, err = kpl.ParseHash(*r.ExplicitHashKey); err != nil {
				return nil, &types.InvalidArgumentException{Message: aws.String(err.Error())}
			}
		}
		sh := f.openShard(h)
		sh.recs = append(sh.recs, r)
		users, _, err := kpl.DecodeInShard(r.Data, sh.Shard)
		if err != nil {
			return nil, &types.InvalidArgumentException{Message: aws.String(err.Error())}
		}
		for _, u := range users {
			f.readable[string(u.Data)] = true
		}
		out.Records = append(out.Records, types.PutRecordsResultEntry{ShardId: aws.String(sh.ID),
			SequenceNumber: aws.String(strconv.Itoa(len(sh.recs)))})
	}
	return out, nil
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

func (f *fakeKinesis) DescribeStreamSummary(context.Context, *kinesis.DescribeStreamSummaryInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	return nil, errors.New("fakeKinesis: DescribeStreamSummary is not needed by the sink")
}

func (f *fakeKinesis) CreateStream(context.Context, *kinesis.CreateStreamInput, ...func(*kinesis.Options)) (*kinesis.CreateStreamOutput, error) {
	return nil, errors.New("fakeKinesis: CreateStream is not needed by the sink")
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
