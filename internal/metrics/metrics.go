// Package metrics holds pg2kinesis' Prometheus metrics, in a registry of
// the run's own (no global state), and serves them with the health checks
// (see Serve). Every stage is handed the part it updates; a stage given
// none makes its own unregistered set (New), so tests need no registry.
package metrics

import (
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

const namespace = "pg2kinesis"

// Metrics is every metric of a run.
type Metrics struct {
	Registry *prometheus.Registry

	Changes  *Changes
	Kinesis  *Kinesis
	Snapshot *Snapshot

	LagBytes    prometheus.Gauge // server's WAL position − slot's confirmed flush
	RetainedWAL prometheus.Gauge // server's WAL position − slot's restart_lsn
	Heartbeats  prometheus.Counter
}

// New returns a run's metrics, registered in a new registry with the Go
// runtime's and the process' own, and build information: the release
// version and the Git commit it was built from.
func New(version, commit string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		Changes:  NewChanges(),
		Kinesis:  NewKinesis(),
		Snapshot: NewSnapshot(),
		LagBytes: gauge("replication_lag_bytes",
			"Server's current WAL position minus the slot's confirmed_flush_lsn, sampled every 10 s; -1 when unknown."),
		RetainedWAL: gauge("slot_retained_wal_bytes",
			"Server's current WAL position minus the slot's restart_lsn: WAL the server keeps for the slot; -1 when unknown."),
		Heartbeats: counter("heartbeats_total",
			"Logical messages written by --heartbeat-interval."),
	}
	m.LagBytes.Set(-1)
	m.RetainedWAL.Set(-1)
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info", Help: "Always 1; the labels say which pg2kinesis runs.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "goversion": runtime.Version()},
	})
	build.Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build,
		m.LagBytes, m.RetainedWAL, m.Heartbeats,
	)
	m.Changes.register(reg)
	m.Kinesis.register(reg)
	m.Snapshot.register(reg)
	return m
}

// GaugeFunc registers a gauge whose value f gives at each scrape.
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, f))
}

// CounterFunc registers a counter whose value f gives at each scrape.
func (m *Metrics) CounterFunc(name, help string, f func() float64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, f))
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
}

func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help})
}

// Kinesis is what the Kinesis sink counts.
type Kinesis struct {
	Calls     prometheus.Counter   // PutRecords calls, successful or not
	Duration  prometheus.Histogram // of each PutRecords call
	Records   prometheus.Counter   // Kinesis records stored (aggregates or plain records)
	Bytes     prometheus.Counter   // their data (bytes out)
	Retried   prometheus.Counter   // Kinesis records sent again
	Throttles prometheus.Counter   // retries caused by throttling
	Rerouted  prometheus.Counter   // user records sent again after a reshard misplaced their aggregate
	LimitWait prometheus.Counter   // seconds senders waited on their shard's rate limit, summed over shards
}

// NewKinesis returns unregistered Kinesis counters (New registers its own).
func NewKinesis() *Kinesis {
	return &Kinesis{
		Calls: counter("kinesis_put_records_calls_total", "PutRecords calls, successful or not."),
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "kinesis_put_records_duration_seconds",
			Help:    "Duration of PutRecords calls.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		Records:   counter("kinesis_records_total", "Kinesis records stored: KPL aggregates, or plain records with --no-aggregate."),
		Bytes:     counter("kinesis_bytes_total", "Bytes of Kinesis record data stored (bytes out)."),
		Retried:   counter("kinesis_records_retried_total", "Kinesis records sent again after a failed call or a partial failure."),
		Throttles: counter("kinesis_throttles_total", "Retries caused by throttling (ProvisionedThroughputExceeded, KMSThrottling)."),
		Rerouted: counter("kinesis_records_rerouted_total",
			"User records sent again because a reshard made Kinesis store their aggregate on a shard that does not hold them all (the KCL drops such an aggregate)."),
		LimitWait: counter("kinesis_rate_limit_wait_seconds_total",
			"Seconds shard senders waited on their shard's rate limit (1,000 records and 1 MiB per second), summed over shards: a hot shard."),
	}
}

func (k *Kinesis) register(reg *prometheus.Registry) {
	reg.MustRegister(k.Calls, k.Duration, k.Records, k.Bytes, k.Retried, k.Throttles, k.Rerouted, k.LimitWait)
}

// ObserveCall counts one PutRecords call that took d.
func (k *Kinesis) ObserveCall(d time.Duration) {
	k.Calls.Inc()
	k.Duration.Observe(d.Seconds())
}

// Changes counts changes by table and operation: every change read is
// then published, filtered out, or skipped (read = published + filtered +
// skipped, each a metric of its own so that a sum never counts twice).
type Changes struct {
	read, published, filtered, skipped, unknown *prometheus.CounterVec

	mu     sync.Mutex
	tables int            // distinct tables labelled so far
	other  *TableCounters // the counters of every table past MaxTables
}

// MaxTables bounds the table label: the changes of tables first seen after
// this many are counted under table="_other", so that a database that
// creates tables without end (a partition a day) cannot grow the metrics
// without end.
const MaxTables = 1000

// Skip reasons, the reason label of pg2kinesis_changes_skipped_total.
const (
	SkipNoPrimaryKey = "no_primary_key" // a table without a key, without --full-change
	SkipOversize     = "oversize"       // over Kinesis' record limit, with --oversize=skip
)

// NewChanges returns unregistered change counters (New registers its own).
func NewChanges() *Changes {
	vec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	}
	return &Changes{
		read:      vec("changes_read_total", "Changes decoded from the slot (a TRUNCATE counts once per table).", "table", "op"),
		published: vec("changes_published_total", "Changes handed to the sink as records.", "table", "op"),
		filtered:  vec("changes_filtered_total", "Changes left out by --table-pat or --operations.", "table", "op"),
		skipped:   vec("changes_skipped_total", "Changes not published: reason no_primary_key or oversize.", "table", "op", "reason"),
		unknown: vec("changes_unknown_table_total",
			"Changes of a table the key cache does not know (renamed or dropped since, with test_decoding), published with the old key they carry or none; also counted as published.",
			"table", "op"),
	}
}

func (c *Changes) register(reg *prometheus.Registry) {
	reg.MustRegister(c.read, c.published, c.filtered, c.skipped, c.unknown)
}

// Table returns the counters of one table, named schema.table; call it
// once per table. Past MaxTables tables it returns the shared "_other"
// counters.
func (c *Changes) Table(schema, name string) *TableCounters {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tables >= MaxTables {
		if c.other == nil {
			c.other = &TableCounters{c: c, label: "_other"}
		}
		return c.other
	}
	c.tables++
	return &TableCounters{c: c, label: schema + "." + name}
}

// TableCounters are one table's counters, for the change handler's
// goroutine alone. Each is made the first time it is counted, so a scrape
// shows only what happened; after that, counting is an atomic add, not a
// label lookup.
type TableCounters struct {
	c                                  *Changes
	label                              string
	read, published, filtered, unknown opCounters
	skipped                            map[string]prometheus.Counter
}

// lastOp is the last operation counted under its own label: a snapshot's
// read (decode.Read) is counted as read, not lumped with an unknown one.
const lastOp = decode.Read

// opCounters are the counters of one table and metric, by operation.
type opCounters [lastOp + 1]prometheus.Counter

func (t *TableCounters) counter(arr *opCounters, vec *prometheus.CounterVec, op decode.Op) prometheus.Counter {
	if op > lastOp {
		op = 0
	}
	if arr[op] == nil {
		arr[op] = vec.WithLabelValues(t.label, op.String())
	}
	return arr[op]
}

// Read counts a change of op read from the slot.
func (t *TableCounters) Read(op decode.Op) { t.counter(&t.read, t.c.read, op).Inc() }

// Published counts a change handed to the sink.
func (t *TableCounters) Published(op decode.Op) { t.counter(&t.published, t.c.published, op).Inc() }

// Filtered counts a change left out by the filters.
func (t *TableCounters) Filtered(op decode.Op) { t.counter(&t.filtered, t.c.filtered, op).Inc() }

// UnknownTable counts a change of a table the key cache does not know.
func (t *TableCounters) UnknownTable(op decode.Op) {
	t.counter(&t.unknown, t.c.unknown, op).Inc()
}

// Skipped counts a change not published, for reason.
func (t *TableCounters) Skipped(op decode.Op, reason string) {
	key := op.String() + "/" + reason
	c, ok := t.skipped[key]
	if !ok {
		if t.skipped == nil {
			t.skipped = map[string]prometheus.Counter{}
		}
		c = t.c.skipped.WithLabelValues(t.label, op.String(), reason)
		t.skipped[key] = c
	}
	c.Inc()
}
