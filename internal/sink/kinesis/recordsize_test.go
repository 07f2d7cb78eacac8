package kinesis

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis/kpl"
)

func TestMaxRecordOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    *types.StreamDescriptionSummary
		want int
	}{
		{"no summary", nil, 1 << 20},
		{"never raised: none reported (kinesalite too)", &types.StreamDescriptionSummary{}, 1 << 20},
		{"1024 KiB", &types.StreamDescriptionSummary{MaxRecordSizeInKiB: aws.Int32(1024)}, 1 << 20},
		{"4096 KiB", &types.StreamDescriptionSummary{MaxRecordSizeInKiB: aws.Int32(4096)}, 4 << 20},
		{"5000 KiB, as AWS's example", &types.StreamDescriptionSummary{MaxRecordSizeInKiB: aws.Int32(5000)}, 5000 << 10},
		{"10240 KiB", &types.StreamDescriptionSummary{MaxRecordSizeInKiB: aws.Int32(10240)}, 10 << 20},
		{"0: not Kinesis'", &types.StreamDescriptionSummary{MaxRecordSizeInKiB: aws.Int32(0)}, 1 << 20},
		{"below 1 MiB: not Kinesis'", &types.StreamDescriptionSummary{MaxRecordSizeInKiB: aws.Int32(512)}, 1 << 20},
		{"past 10 MiB: not Kinesis'", &types.StreamDescriptionSummary{MaxRecordSizeInKiB: aws.Int32(20480)}, 10 << 20},
	} {
		if got := maxRecordOf(tc.d); got != tc.want {
			t.Errorf("%s: %d bytes, want %d", tc.name, got, tc.want)
		}
	}
}

func TestCallBytes(t *testing.T) {
	for _, tc := range []struct{ maxRecord, want int }{
		{1 << 20, 5 << 20},
		{1<<20 + 1<<10, 10 << 20},
		{4 << 20, 10 << 20},
		{10 << 20, 10 << 20},
	} {
		if got := callBytes(tc.maxRecord); got != tc.want {
			t.Errorf("callBytes(%d) = %d, want %d", tc.maxRecord, got, tc.want)
		}
	}
}

// The largest user record Put takes in aggregated mode is, once framed, at
// most the stream's limit, and Put refuses nothing that fits but for a
// byte or two just past a length's boundary (2 MiB: 3 bytes below, 4
// from there), where the framing is reckoned at the limit's length.
func TestAggregateOverheadAtEachLimit(t *testing.T) {
	for _, limit := range []int{1 << 20, 2<<20 - 1, 2 << 20, 4 << 20, 10 << 20} {
		for _, pk := range []string{"k", strings.Repeat("k", 256)} {
			t.Run(fmt.Sprintf("%d/key of %d", limit, len(pk)), func(t *testing.T) {
				most := limit - aggregateOverhead(pk, limit) // data + key
				framed := func(userSize int) int {
					a := kpl.NewAggregator()
					a.Add(pk, make([]byte, userSize-len(pk)))
					return len(a.Encode(nil)) + len(a.PartitionKey())
				}
				if got := framed(most); got > limit {
					t.Fatalf("the largest user record taken, %d bytes, makes a Kinesis record of %d, over %d", most, got, limit)
				}
				if got := framed(most + 3); got <= limit {
					t.Fatalf("a user record of %d bytes, refused, would make a Kinesis record of %d, within %d", most+3, got, limit)
				}
			})
		}
	}
}

// A record larger than a second's worth of the shard (up to 10 MiB, a
// shard taking 1 MiB a second) passes a full bucket, and the shard then
// waits until it made up for it: a bucket that waited for the record's
// size would never let it through.
func TestShardLimitLargeRecord(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, size := range []int{1 << 20, 3 << 20 / 2, 4 << 20, 10 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			// A small record waits out the debt; a record of a second's
			// worth or more waits for a full bucket after it.
			for _, next := range []int{1, 1 << 20, 10 << 20} {
				l := newShardLimit(shardRecordsPerSecond, shardBytesPerSecond, t0)
				if ok, wait := l.fits(t0, 1, size); !ok {
					t.Fatalf("a record of %d bytes waits %v on a full bucket", size, wait)
				}
				l.charge(t0, 1, size)
				want := time.Duration(float64(size-shardBytesPerSecond+min(next, shardBytesPerSecond)) / shardBytesPerSecond * float64(time.Second))
				_, wait := l.fits(t0, 1, next)
				if wait < want || wait > want+time.Millisecond {
					t.Fatalf("after %d bytes, %d more wait %v, want %v", size, next, wait, want)
				}
				if ok, _ := l.fits(t0.Add(wait), 1, next); !ok {
					t.Fatalf("after %d bytes, %d more still wait after %v", size, next, wait)
				}
			}
		})
	}
}

// A plain call is filled up to callBytes, never past it, and a lone record
// goes whatever its size.
func TestTakeCallBytes(t *testing.T) {
	for _, tc := range []struct {
		maxRecord, size, n int
		want               int // records in the first call
	}{
		{1 << 20, 1<<20 - 10, 12, 5},
		{4 << 20, 3 << 20, 7, 3},
		{10 << 20, 10<<20 - 10, 2, 1},
		{1 << 20, 8 << 20, 2, 1}, // queued before the stream's limit was lowered
	} {
		t.Run(fmt.Sprintf("%d/%d", tc.maxRecord, tc.size), func(t *testing.T) {
			q := newShardQueue("s", "0", nil)
			q.callBytes = callBytes(tc.maxRecord)
			for i := range tc.n {
				q.ready = append(q.ready, &entry{data: make([]byte, tc.size), pk: fmt.Sprint("k", i), seqs: []uint64{uint64(i + 1)}})
			}
			batch, _, _ := q.take(time.Unix(1000, 0))
			if n, size := callCost(batch); n != tc.want || (n > 1 && size > q.callBytes) {
				t.Fatalf("a call of %d records and %d bytes, want %d records within %d bytes", n, size, tc.want, q.callBytes)
			}
		})
	}
}
