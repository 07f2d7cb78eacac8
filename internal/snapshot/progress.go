package snapshot

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
)

// tableRun is one table's snapshot as this run sees it, for the metrics,
// the progress line and /readyz: the state table's state, and what its
// worker did since it started. The runner's mu guards it.
type tableRun struct {
	m        *metrics.SnapshotTable
	state    string
	active   bool      // a worker reads it
	started  time.Time // when its worker started
	base     int64     // rows delivered before its worker started (the state's)
	estimate int64
	// By its worker since it started:
	published, dropped, chunks, spoiled int64
}

// track returns table's run, made on first use; call it with r.mu held.
func (r *Runner) track(table catalog.Name) *tableRun {
	t, ok := r.tables[table]
	if !ok {
		t = &tableRun{m: r.cfg.Metrics.Table(table.Schema, table.Table), estimate: -1}
		r.tables[table] = t
	}
	return t
}

// loaded updates the tables' states from the state table's rows.
func (r *Runner) loaded(ps []Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range ps {
		t := r.track(p.Table)
		t.state = p.State
		t.m.SetState(p.State)
		if !t.active {
			t.base = p.Rows
		}
	}
}

// recorded notes that the state table now says table is in state.
func (r *Runner) recorded(table catalog.Name, state string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.track(table)
	t.state = state
	t.m.SetState(state)
}

// begin notes that a worker starts reading p's table, with estimate rows.
func (r *Runner) begin(p Progress, estimate int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.track(p.Table)
	*t = tableRun{m: t.m, state: Running, active: true, started: time.Now(), base: p.Rows, estimate: estimate}
	t.m.SetState(Running)
	t.m.SetEstimate(estimate)
}

// placed counts a chunk of table the stream has placed (or spoiled).
func (r *Runner) placed(table catalog.Name, h *Handoff) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.track(table)
	if h.Spoiled {
		t.spoiled++
		t.m.Spoiled.Inc()
		return
	}
	t.published += int64(h.Published)
	t.dropped += int64(h.Dropped)
	t.chunks++
	t.m.Published.Add(float64(h.Published))
	t.m.Dropped.Add(float64(h.Dropped))
	t.m.Chunks.Inc()
}

// stopped notes that table's worker ended.
func (r *Runner) stopped(table catalog.Name) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.track(table).active = false
}

// Status is one table's snapshot as the run sees it.
type Status struct {
	Table    catalog.Name
	State    string // pending, running, done or failed, as the state table says
	Active   bool   // a worker of this run reads it
	Rows     int64  // published: delivered before its worker started, and placed since
	Estimate int64  // the planner's row count when its worker started; -1: unknown
	// Rate is the rows placed per second since its worker started, ETA
	// the time the rows left to Estimate take at that rate (-1: unknown).
	Rate                     float64
	ETA                      time.Duration
	Chunks, Spoiled, Dropped int64 // by its worker
}

// Status lists the tables of the slot the runner knows of, by name: those
// in the state table, and those its workers read.
func (r *Runner) Status(now time.Time) []Status {
	r.mu.Lock()
	out := make([]Status, 0, len(r.tables))
	for n, t := range r.tables {
		s := Status{Table: n, State: t.state, Active: t.active, Rows: t.base + t.published, Estimate: t.estimate,
			Chunks: t.chunks, Spoiled: t.spoiled, Dropped: t.dropped, ETA: -1}
		if t.active {
			s.Rate = rate(t.published, now.Sub(t.started))
			s.ETA = eta(s.Rows, s.Estimate, s.Rate)
		}
		out = append(out, s)
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Status) int {
		return cmp.Or(cmp.Compare(a.Table.Schema, b.Table.Schema), cmp.Compare(a.Table.Table, b.Table.Table))
	})
	return out
}

// rate is rows per second over elapsed; 0 before any time passed.
func rate(rows int64, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(rows) / elapsed.Seconds()
}

// eta is how long the rows left to estimate take at perSecond, to the
// second; -1 when that cannot be told: no estimate, no rate yet, or an
// estimate the rows already passed (it was stale).
func eta(rows, estimate int64, perSecond float64) time.Duration {
	if estimate < 0 || perSecond <= 0 || rows > estimate {
		return -1
	}
	secs := math.Ceil(float64(estimate-rows) / perSecond)
	return time.Duration(secs) * time.Second
}

// percent is rows of estimate, to a tenth; -1 when there is no estimate.
func percent(rows, estimate int64) float64 {
	switch {
	case estimate < 0:
		return -1
	case estimate == 0 || rows >= estimate:
		return 100
	}
	return math.Floor(float64(rows)*1000/float64(estimate)) / 10
}

func etaText(d time.Duration) string {
	if d < 0 {
		return "unknown"
	}
	return d.String()
}

// Attrs are the progress line's attributes of a table being read.
func (s Status) Attrs() []any {
	return []any{"table", s.Table, "rows", s.Rows, "estimate", s.Estimate, "percent", percent(s.Rows, s.Estimate),
		"rows_per_s", math.Round(s.Rate), "eta", etaText(s.ETA),
		"chunks", s.Chunks, "spoiled", s.Spoiled, "dropped", s.Dropped}
}

// Details describe the snapshots in a few lines, for /readyz: one per
// table being read or waiting to resume, and the count of each state.
func Details(ss []Status) []string {
	var lines []string
	count := map[string]int{}
	for _, s := range ss {
		count[s.State]++
		switch {
		case s.Active:
			of := ""
			if s.Estimate >= 0 {
				of = fmt.Sprintf(" of about %d (%.1f%%)", s.Estimate, percent(s.Rows, s.Estimate))
			}
			lines = append(lines, fmt.Sprintf("snapshot of %s: running, %d rows published%s, %.0f rows/s, ETA %s",
				s.Table, s.Rows, of, s.Rate, etaText(s.ETA)))
		case s.State == Running:
			lines = append(lines, fmt.Sprintf("snapshot of %s: running, %d rows delivered, no worker now (it resumes after its last delivered chunk)",
				s.Table, s.Rows))
		}
	}
	if len(ss) == 0 {
		return nil
	}
	var states []string
	for _, st := range []string{Running, Pending, Failed, Done} {
		if count[st] > 0 {
			states = append(states, fmt.Sprintf("%d %s", count[st], st))
		}
	}
	return append(lines, "snapshots: "+strings.Join(states, ", "))
}
