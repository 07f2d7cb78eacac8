package snapshot

import (
	"strings"
	"testing"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
)

func TestRate(t *testing.T) {
	for _, c := range []struct {
		rows    int64
		elapsed time.Duration
		want    float64
	}{
		{0, 0, 0},
		{1000, 0, 0}, // no time yet: no rate rather than infinity
		{1000, -time.Second, 0},
		{0, time.Second, 0},
		{25000, 10 * time.Second, 2500},
		{1, 4 * time.Second, 0.25},
	} {
		if got := rate(c.rows, c.elapsed); got != c.want {
			t.Errorf("rate(%d, %s) = %v, want %v", c.rows, c.elapsed, got, c.want)
		}
	}
}

func TestETA(t *testing.T) {
	for _, c := range []struct {
		rows, estimate int64
		perSecond      float64
		want           time.Duration
	}{
		{0, -1, 100, -1},      // never analyzed
		{0, 1000, 0, -1},      // no rate yet
		{1500, 1000, 100, -1}, // the estimate was stale
		{1000, 1000, 100, 0},  // there
		{0, 1000, 100, 10 * time.Second},
		{500, 1000, 300, 2 * time.Second}, // 1.67 s, rounded up
		{0, 10_000_000, 2500, 4000 * time.Second},
	} {
		if got := eta(c.rows, c.estimate, c.perSecond); got != c.want {
			t.Errorf("eta(%d, %d, %v) = %s, want %s", c.rows, c.estimate, c.perSecond, got, c.want)
		}
	}
}

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		rows, estimate int64
		want           float64
	}{
		{10, -1, -1}, {0, 0, 100}, {5, 0, 100}, {0, 10, 0}, {1, 3, 33.3}, {2, 3, 66.6}, {30, 20, 100},
	} {
		if got := percent(c.rows, c.estimate); got != c.want {
			t.Errorf("percent(%d, %d) = %v, want %v", c.rows, c.estimate, got, c.want)
		}
	}
}

// A worker's table reports the rows delivered before it started plus
// those placed since, at the rate of the latter; a table it no longer
// reads has no rate, and /readyz's details count the states.
func TestStatus(t *testing.T) {
	r := New(Config{Metrics: metrics.NewSnapshot()}, NewExchange("s", "r"))
	items := catalog.Name{Schema: "public", Table: "items"}
	other := catalog.Name{Schema: "public", Table: "a"}
	r.loaded([]Progress{{Table: items, State: Running, Rows: 400}, {Table: other, State: Pending}})
	r.begin(Progress{Table: items, State: Running, Rows: 400}, 2000)
	r.placed(items, &Handoff{Published: 90, Dropped: 10})
	r.placed(items, &Handoff{Spoiled: true})
	r.placed(items, &Handoff{Published: 110})
	started := r.tables[items].started
	ss := r.Status(started.Add(10 * time.Second))
	if len(ss) != 2 || ss[0].Table != other || ss[1].Table != items {
		t.Fatalf("Status = %+v, want public.a then public.items", ss)
	}
	want := Status{Table: items, State: Running, Active: true, Rows: 600, Estimate: 2000, Rate: 20, ETA: 70 * time.Second,
		Chunks: 2, Spoiled: 1, Dropped: 10}
	if ss[1] != want {
		t.Errorf("Status = %+v, want %+v", ss[1], want)
	}
	details := strings.Join(Details(ss), "\n")
	if want := "snapshot of public.items: running, 600 rows published of about 2000 (30.0%), 20 rows/s, ETA 1m10s\nsnapshots: 1 running, 1 pending"; details != want {
		t.Errorf("Details =\n%s\nwant\n%s", details, want)
	}
	r.stopped(items)
	if s := r.Status(time.Now())[1]; s.Active || s.Rate != 0 || s.ETA != -1 || s.Rows != 600 {
		t.Errorf("Status of a table without its worker = %+v", s)
	}
	if d := Details(r.Status(time.Now())); !strings.Contains(d[0], "no worker now") {
		t.Errorf("Details of a running table without its worker: %q", d)
	}
	r.recorded(items, Done)
	if d := Details(r.Status(time.Now())); len(d) != 1 || d[0] != "snapshots: 1 pending, 1 done" {
		t.Errorf("Details once done: %q", d)
	}
	if Details(nil) != nil {
		t.Errorf("Details of no snapshot: %q", Details(nil))
	}
}
