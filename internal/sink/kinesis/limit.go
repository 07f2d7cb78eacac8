package kinesis

import (
	"fmt"
	"math"
	"time"
)

// Kinesis' write limits per shard: 1,000 records and 1 MiB of data
// (partition keys included) per second, whether the stream is provisioned
// or on demand. An aggregate counts as one record.
// https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html
const (
	shardRecordsPerSecond = 1000
	shardBytesPerSecond   = 1 << 20
)

// shardLimit keeps what a shard's sender sends within the shard's limits,
// so that a hot shard waits, and aggregates meanwhile, instead of drawing
// ProvisionedThroughputExceededException for call after call: two token
// buckets (records, bytes), each holding one second's worth, as the KPL's
// per-shard rate limit does. Only the shard's sender uses it.
//
// A call is allowed when the buckets hold its cost at the time it is sent,
// and charged when it returns. Kinesis counts it at some moment between
// the two, so a bucket charged at the latest moment never holds more than
// Kinesis' does, however long the round trip: a call the buckets allowed
// is not throttled by a shard that has the same limits and no other
// writer. Failed and throttled records are charged too (Kinesis may not
// count them): that only errs on the side of waiting.
type shardLimit struct {
	records, bytes bucket
}

func newShardLimit(records, bytes int, now time.Time) *shardLimit {
	return &shardLimit{records: newBucket(records, now), bytes: newBucket(bytes, now)}
}

// fits reports whether a call of n records and size bytes may be sent at
// now, and if not, how long until it may.
func (l *shardLimit) fits(now time.Time, n, size int) (bool, time.Duration) {
	w := max(l.records.wait(now, float64(n)), l.bytes.wait(now, float64(size)))
	return w == 0, w
}

// holds reports whether a call of n records and size bytes is within one
// second's worth. fits lets a larger call through a full bucket, as it
// must for a single record of the largest size; a call that gathers
// several records must stop at it, or a backlog after an idle spell would
// go out as one call of 5 or 10 MiB to a shard that takes 1 MiB a second.
func (l *shardLimit) holds(n, size int) bool {
	return float64(n) <= l.records.rate && float64(size) <= l.bytes.rate
}

// charge counts a call of n records and size bytes that returned at now.
func (l *shardLimit) charge(now time.Time, n, size int) {
	l.records.take(now, float64(n))
	l.bytes.take(now, float64(size))
}

// bucket is a token bucket that refills at rate per second up to rate.
//
// A call larger than the bucket (a record of up to 10 MiB on a stream
// whose records were raised, against 1 MiB a second) waits only for a
// full bucket, goes, and leaves the bucket in debt: the shard then waits
// until the debt is repaid at the shard's rate, about 10 s after a record
// of 10 MiB. Capping the wait at the record's size instead would block
// such a record forever, and a bucket as large as the largest record would
// let 10 MiB of small records out at once after an idle spell, ten times
// what the shard takes a second. Kinesis takes a large record the same
// way: a burst over the shard's rate, which the shard then makes up for
// ("Handle large records" in its developer guide).
type bucket struct {
	rate  float64
	level float64
	at    time.Time // when level was last brought up to date
}

func newBucket(rate int, now time.Time) bucket {
	return bucket{rate: float64(rate), level: float64(rate), at: now}
}

func (b *bucket) fill(now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.level = math.Min(b.rate, b.level+b.rate*d.Seconds())
		b.at = now
	}
}

// wait is how long until the bucket holds n, 0 if it does at now. n is at
// most the rate (a call within one second's worth), or wait is the time
// until the bucket is full.
func (b *bucket) wait(now time.Time, n float64) time.Duration {
	b.fill(now)
	n = math.Min(n, b.rate)
	if b.level >= n {
		return 0
	}
	// Rounded up, so that the sender does not wake a little early to find
	// the bucket still short.
	return time.Duration(math.Ceil((n-b.level)/b.rate*float64(time.Second))) + time.Microsecond
}

// take charges n; the level may go below zero (a call larger than the
// bucket), and the next call then waits until the debt is repaid.
func (b *bucket) take(now time.Time, n float64) {
	b.fill(now)
	b.level -= n
}

// limits resolves the Config's per-shard rate limits; on is false when
// they are off.
func (cfg Config) limits() (records, bytes int, on bool, err error) {
	if cfg.NoShardLimit {
		return 0, 0, false, nil
	}
	records, bytes = cfg.ShardRecordsPerSecond, cfg.ShardBytesPerSecond
	if records == 0 {
		records = shardRecordsPerSecond
	}
	if bytes == 0 {
		bytes = shardBytesPerSecond
	}
	// A byte bucket smaller than a record of 1 MiB, which every stream
	// takes, would send even a stream's ordinary records in debt; Kinesis'
	// own shard limit is not smaller: such a setting is a mistake. Records
	// larger than 1 MiB go in debt by design (see bucket).
	if records < 1 || bytes < baseRecordSize {
		return 0, 0, false, fmt.Errorf("shard rate limit of %d records and %d bytes per second: want at least 1 record and %d bytes", records, bytes, baseRecordSize)
	}
	return records, bytes, true, nil
}
