package kinesis

import (
	"sync"
	"time"
)

// Stats counts what the sink did: the totals Drain logs at shutdown.
type Stats struct {
	Records        int           // user records acknowledged
	KinesisRecords int           // Kinesis records (aggregates or plain) stored
	Bytes          int           // bytes of Kinesis record data stored
	Calls          int           // PutRecords calls
	CallTime       time.Duration // total time spent in PutRecords
	Retries        int           // calls or records sent again
	Throttles      int           // retries caused by throttling
	Rerouted       int           // user records sent again: their aggregate landed on a shard not holding them all (a reshard)
	LimitWait      time.Duration // time senders waited on their shard's rate limit, summed over shards
}

type statsBox struct {
	mu sync.Mutex
	s  Stats
}

func (b *statsBox) add(f func(*Stats)) {
	b.mu.Lock()
	f(&b.s)
	b.mu.Unlock()
}

// Stats returns a copy of the counters.
func (s *Sink) Stats() Stats {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	return s.stats.s
}
