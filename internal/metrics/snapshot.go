package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Snapshot is what the snapshot runner counts, by table. Like the change
// counters, the tables first snapshotted past MaxTables share the table
// label "_other", whose gauges then sum those tables'.
type Snapshot struct {
	rowsRead, published, dropped, chunks, spoiled, readSeconds, waitSeconds *prometheus.CounterVec
	estimate, state                                                         *prometheus.GaugeVec

	mu     sync.Mutex
	tables map[string]*SnapshotTable // by schema.table, labelled or "_other"
	named  int                       // tables under a label of their own
	other  *snapshotSeries           // the series of every table past MaxTables
}

// NewSnapshot returns unregistered snapshot metrics (New registers its
// own).
func NewSnapshot() *Snapshot {
	counters := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, []string{"table"})
	}
	return &Snapshot{
		rowsRead: counters("snapshot_rows_read_total",
			"Rows a snapshot read from the table, chunks read again included."),
		published: counters("snapshot_rows_published_total",
			"Rows a snapshot placed in the stream as reads, handed to the sink."),
		dropped: counters("snapshot_rows_dropped_total",
			"Rows read by a snapshot and not published because a change of theirs was read in their chunk's window (the change, later, wins)."),
		chunks: counters("snapshot_chunks_total",
			"Chunks a snapshot placed in the stream."),
		spoiled: counters("snapshot_chunks_spoiled_total",
			"Chunks a snapshot read again: a change without its key (a truncate) in the window, or a transaction invisible to the read committed before it."),
		readSeconds: counters("snapshot_read_seconds_total",
			"Time a snapshot spent reading chunks from the table, each in its short transaction."),
		waitSeconds: counters("snapshot_wait_seconds_total",
			"Time a snapshot's worker spent waiting for the stream to place its chunks, once it had read the next (it reads one chunk ahead)."),
		estimate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "snapshot_rows_estimated",
			Help: "The planner's row count of the table (pg_class.reltuples, scaled to its pages now) when its snapshot started; -1 when never analyzed."}, []string{"table"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "snapshot_state",
			Help: "1 for the state of the table's snapshot (pending, running, done, as in the state table), 0 for the others."}, []string{"table", "state"}),
		tables: map[string]*SnapshotTable{},
	}
}

func (s *Snapshot) register(reg *prometheus.Registry) {
	reg.MustRegister(s.rowsRead, s.published, s.dropped, s.chunks, s.spoiled, s.readSeconds, s.waitSeconds, s.estimate, s.state)
}

// snapshotSeries are the series of one table label.
type snapshotSeries struct {
	label string

	RowsRead    prometheus.Counter
	Published   prometheus.Counter
	Dropped     prometheus.Counter
	Chunks      prometheus.Counter
	Spoiled     prometheus.Counter
	ReadSeconds prometheus.Counter
	WaitSeconds prometheus.Counter

	estimateGauge prometheus.Gauge // made at the first estimate
}

func (s *Snapshot) series(label string) *snapshotSeries {
	return &snapshotSeries{
		label:       label,
		RowsRead:    s.rowsRead.WithLabelValues(label),
		Published:   s.published.WithLabelValues(label),
		Dropped:     s.dropped.WithLabelValues(label),
		Chunks:      s.chunks.WithLabelValues(label),
		Spoiled:     s.spoiled.WithLabelValues(label),
		ReadSeconds: s.readSeconds.WithLabelValues(label),
		WaitSeconds: s.waitSeconds.WithLabelValues(label),
	}
}

// SnapshotTable is one table's snapshot metrics. Its counters are safe for
// any goroutine; so are SetState and SetEstimate.
type SnapshotTable struct {
	*snapshotSeries
	s         *Snapshot
	shared    bool    // under "_other": gauges add this table's share
	state     string  // the state counted, "" before the first
	estimated float64 // the estimate counted
}

// Table returns the metrics of table schema.name, the same each time it is
// asked for. Past MaxTables tables, a new table's are the shared "_other"
// series.
func (s *Snapshot) Table(schema, name string) *SnapshotTable {
	label := schema + "." + name
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tables[label]; ok {
		return t
	}
	t := &SnapshotTable{s: s}
	if s.named < MaxTables {
		s.named++
		t.snapshotSeries = s.series(label)
	} else {
		if s.other == nil {
			s.other = s.series("_other")
		}
		t.snapshotSeries, t.shared = s.other, true
	}
	s.tables[label] = t
	return t
}

// SetState moves the table's snapshot to state (pending, running, done).
// A table's state series are 1 for its state, 0 for those it left; under
// "_other" they count the tables in each state.
func (t *SnapshotTable) SetState(state string) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if state == t.state {
		return
	}
	if t.state != "" {
		t.s.state.WithLabelValues(t.label, t.state).Dec()
	}
	t.s.state.WithLabelValues(t.label, state).Inc()
	t.state = state
}

// SetEstimate sets the table's estimated rows, -1 for unknown. Under
// "_other" the known estimates add up.
func (t *SnapshotTable) SetEstimate(rows int64) {
	v := float64(rows)
	if t.shared && rows < 0 {
		v = 0
	}
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if t.estimateGauge == nil {
		// Not before: a table done in an earlier run has no estimate.
		t.estimateGauge = t.s.estimate.WithLabelValues(t.label)
	}
	t.estimateGauge.Add(v - t.estimated)
	t.estimated = v
}
