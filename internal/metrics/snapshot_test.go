package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A table's state series are one-hot; its estimate is set, not added;
// asking for a table again gives the same series.
func TestSnapshotTableStateAndEstimate(t *testing.T) {
	s := NewSnapshot()
	reg := prometheus.NewRegistry()
	s.register(reg)
	a := s.Table("public", "a")
	a.SetState("pending")
	a.SetState("running")
	a.SetEstimate(-1)
	a.SetEstimate(500)
	s.Table("public", "a").Published.Add(3)
	a.SetState("running")
	want := `
# HELP pg2kinesis_snapshot_rows_estimated The planner's row count of the table (pg_class.reltuples, scaled to its pages now) when its snapshot started; -1 when never analyzed.
# TYPE pg2kinesis_snapshot_rows_estimated gauge
pg2kinesis_snapshot_rows_estimated{table="public.a"} 500
# HELP pg2kinesis_snapshot_rows_published_total Rows a snapshot placed in the stream as reads, handed to the sink.
# TYPE pg2kinesis_snapshot_rows_published_total counter
pg2kinesis_snapshot_rows_published_total{table="public.a"} 3
# HELP pg2kinesis_snapshot_state 1 for the state of the table's snapshot (pending, running, done, as in the state table), 0 for the others.
# TYPE pg2kinesis_snapshot_state gauge
pg2kinesis_snapshot_state{state="pending",table="public.a"} 0
pg2kinesis_snapshot_state{state="running",table="public.a"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"pg2kinesis_snapshot_rows_estimated", "pg2kinesis_snapshot_rows_published_total", "pg2kinesis_snapshot_state"); err != nil {
		t.Error(err)
	}
}

// Past MaxTables, tables share "_other", whose state series count the
// tables in each state and whose estimate sums the known ones.
func TestSnapshotOtherTables(t *testing.T) {
	s := NewSnapshot()
	for i := range MaxTables {
		s.Table("public", "t"+string(rune('a'+i%26))+strings.Repeat("x", i/26))
	}
	x, y := s.Table("public", "x"), s.Table("public", "y")
	x.SetState("running")
	y.SetState("running")
	x.SetEstimate(100)
	y.SetEstimate(-1)
	y.SetEstimate(50)
	x.SetState("done")
	x.Chunks.Inc()
	y.Chunks.Inc()
	for _, c := range []struct {
		got  float64
		want float64
		what string
	}{
		{testutil.ToFloat64(s.state.WithLabelValues("_other", "running")), 1, "running"},
		{testutil.ToFloat64(s.state.WithLabelValues("_other", "done")), 1, "done"},
		{testutil.ToFloat64(s.estimate.WithLabelValues("_other")), 150, "estimate"},
		{testutil.ToFloat64(s.chunks.WithLabelValues("_other")), 2, "chunks"},
	} {
		if c.got != c.want {
			t.Errorf("_other %s = %v, want %v", c.what, c.got, c.want)
		}
	}
}
