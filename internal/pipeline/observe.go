package pipeline

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/checkpoint"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
	"github.com/pg2kinesis/pg2kinesis/internal/slotwatch"
	"github.com/pg2kinesis/pg2kinesis/internal/snapshot"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
)

// stats are the run's running totals, for the metrics and the progress
// line: plain atomics, cheaper per change than a Prometheus counter.
type stats struct {
	walBytes    atomic.Uint64 // plugin output received
	changes     atomic.Uint64 // changes read (one per truncated table)
	published   atomic.Uint64 // records handed to the sink
	recordBytes atomic.Uint64 // their formatted size
	acked       atomic.Uint64 // records the sink delivered
	xid         atomic.Uint32 // of the last change read
}

// tableCounters are one table's change counters, under the key that found
// them (a copy: the event's strings may alias the parser's buffers).
type tableCounters struct {
	name catalog.Name
	*metrics.TableCounters
	stream string // the table's stream, once routed (Config.Route)
}

// stream is the stream of c's table with Config.Route, worked out on its
// first record; "" without routes.
func (h *changeHandler) stream(c *tableCounters) (string, error) {
	if h.route == nil || c.stream != "" {
		return c.stream, nil
	}
	s, err := h.route(c.name.Schema, c.name.Table)
	if err != nil {
		return "", err
	}
	c.stream = s
	return s, nil
}

// counters returns t's change counters, made on first use.
func (h *changeHandler) counters(t decode.Table) *tableCounters {
	if h.last != nil && h.last.name.Table == t.Name && h.last.name.Schema == t.Schema {
		return h.last
	}
	c, ok := h.tables[catalog.Name{Schema: t.Schema, Table: t.Name}]
	if !ok {
		n := catalog.Name{Schema: strings.Clone(t.Schema), Table: strings.Clone(t.Name)}
		c = &tableCounters{name: n, TableCounters: h.changes.Table(t.Schema, t.Name)}
		h.tables[n] = c
	}
	h.last = c
	return c
}

// observer is what the metrics, the readiness check and the progress line
// read of a run.
type observer struct {
	src      *source.Source
	tracker  *checkpoint.Tracker
	keys     *catalog.Cache
	delivery *delivery
	stats    *stats
	watch    *slotwatch.Watcher // nil without a normal connection
	acks     *ackWatch
	snap     *snapshot.Runner // nil without a normal connection
}

// register adds the metrics that are read from the run's state at each
// scrape.
func (o *observer) register(m *metrics.Metrics) {
	m.CounterFunc("wal_bytes_total", "Bytes of plugin output received from Postgres (bytes in).",
		func() float64 { return float64(o.stats.walBytes.Load()) })
	m.CounterFunc("record_bytes_total", "Bytes of formatted records handed to the sink, before aggregation.",
		func() float64 { return float64(o.stats.recordBytes.Load()) })
	m.CounterFunc("records_acknowledged_total", "Records the sink has delivered for good (Kinesis stored them).",
		func() float64 { return float64(o.stats.acked.Load()) })
	m.GaugeFunc("records_in_flight", "Records handed to the sink and not yet acknowledged.",
		func() float64 { return float64(o.tracker.InFlight()) })
	m.GaugeFunc("flushed_lsn", "The flush LSN reported to Postgres, as a number (everything before it is delivered).",
		func() float64 { return float64(o.tracker.Flush()) })
	m.GaugeFunc("replication_lag_seconds",
		"Now minus the commit time of the oldest transaction read but not yet acknowledged, or else of the last one acknowledged; 0 when everything is delivered and the server has nothing more to send.",
		func() float64 { return o.delivery.lag(time.Now()).Seconds() })
	m.GaugeFunc("up", "1 while the replication connection streams; 0 while connecting, reconnecting or standing by.",
		func() float64 {
			if o.src.Streaming() {
				return 1
			}
			return 0
		})
	m.CounterFunc("reconnects_total", "Replication sessions this process started after its first (after a lost connection, or getting the slot back from another process).",
		func() float64 { return float64(max(o.src.Sessions(), 1) - 1) })
	m.CounterFunc("pk_cache_refreshes_total", "Reloads of the key cache (start, SIGHUP, schedule, a changed catalog, an unknown table, a change that contradicts a cached key).",
		func() float64 { return float64(o.keys.Refreshes()) })
	m.CounterFunc("pk_cache_checks_total", "Checks of the catalog's version, which reload the key cache when a key may have changed.",
		func() float64 { return float64(o.keys.Checks()) })
}

// state is the readiness check's input.
func (o *observer) state() metrics.State {
	now := time.Now()
	inFlight, since := o.acks.sample(now)
	st := metrics.State{Streaming: o.src.Streaming(), LastStatus: o.src.LastStatus(), StatusInterval: o.src.StatusInterval(),
		InFlight: inFlight, Progress: since}
	if o.snap != nil {
		// A snapshot's progress is shown, not judged: the stream it
		// goes through is, and a slow table is no fault of the run.
		st.Details = snapshot.Details(o.snap.Status(now))
	}
	return st
}

// ackWatch remembers when the acknowledgements last moved the tracker's
// watermark, or when nothing waited. Sampled every second (watch) and at
// each readiness check, it tells how long the oldest waiting record has
// waited to within a second, without reading the clock per record.
type ackWatch struct {
	tracker   *checkpoint.Tracker
	mu        sync.Mutex
	watermark uint64
	at        time.Time
}

func (a *ackWatch) sample(now time.Time) (inFlight uint64, since time.Time) {
	wm, n := a.tracker.Watermark()
	a.mu.Lock()
	defer a.mu.Unlock()
	if n == 0 || wm != a.watermark || a.at.IsZero() {
		a.watermark, a.at = wm, now
	}
	return n, a.at
}

func (a *ackWatch) watch(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			a.sample(now)
		}
	}
}

// progress logs a line every interval until ctx ends: counts and MB of the
// window and since start, the last xid, the flush LSN and the lag; and a
// line for each table a snapshot reads.
func (o *observer) progress(ctx context.Context, interval time.Duration, log *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	var prevChanges, prevPublished, prevIn, prevOut uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		changes, published := o.stats.changes.Load(), o.stats.published.Load()
		in, out := o.stats.walBytes.Load(), o.stats.recordBytes.Load()
		lagBytes := int64(-1)
		if o.watch != nil {
			lagBytes = o.watch.Lag()
		}
		log.Info("progress",
			"window", interval,
			"changes", changes-prevChanges, "published", published-prevPublished,
			"mb_in", mb(in-prevIn), "mb_out", mb(out-prevOut),
			"total_changes", changes, "total_published", published,
			"total_mb_in", mb(in), "total_mb_out", mb(out),
			"xid", o.stats.xid.Load(), "flush_lsn", o.tracker.Flush(), "in_flight", o.tracker.InFlight(),
			"lag_bytes", lagBytes, "lag_seconds", o.delivery.lag(time.Now()).Seconds())
		prevChanges, prevPublished, prevIn, prevOut = changes, published, in, out
		if o.snap == nil {
			continue
		}
		for _, s := range o.snap.Status(time.Now()) {
			if s.Active {
				log.Info("snapshot progress", s.Attrs()...)
			}
		}
	}
}

func mb(bytes uint64) float64 {
	return float64(bytes*100/(1<<20)) / 100 // two decimals
}
