// Package pipeline wires the stages of a run: source → decode → filter →
// format → sink, with the slot flushed only past what the sink delivered.
// It owns the run's goroutines (see lifetime.Run).
package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/checkpoint"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/decode/pgoutput"
	"github.com/pg2kinesis/pg2kinesis/internal/decode/testdecoding"
	"github.com/pg2kinesis/pg2kinesis/internal/decode/wal2json"
	"github.com/pg2kinesis/pg2kinesis/internal/filter"
	"github.com/pg2kinesis/pg2kinesis/internal/format"
	"github.com/pg2kinesis/pg2kinesis/internal/lifetime"
	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/slotwatch"
	"github.com/pg2kinesis/pg2kinesis/internal/snapshot"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
	"github.com/pg2kinesis/pg2kinesis/internal/spool"
)

// Config is what a run needs.
type Config struct {
	Source source.Config
	// NewSink builds the sink; it acknowledges delivered records with ack.
	NewSink      func(ack sink.AckFunc) (sink.Sink, error)
	PartitionKey format.PartitionKey // default xid
	Oversize     sink.Oversize       // default fail
	// Route names the stream of a table's records (Record.Stream), for a
	// sink with a stream per table (--stream-name with placeholders,
	// --route); nil: one stream, and Record.Stream is empty.
	Route      func(schema, table string) (string, error)
	Formatter  format.Name
	FullChange bool
	TablePat   *regexp.Regexp // nil: every table
	Operations []string       // empty: every operation

	SpoolDir string // where streamed transactions wait for their commit ("": the temp dir)
	// PublicationFromPattern creates a missing pgoutput publication for the
	// tables TablePat matches at start, instead of for all tables.
	PublicationFromPattern bool

	Keys              catalog.Source
	Tables            catalog.TableLister // nil: no check of TablePat at start
	PKRefreshInterval time.Duration
	// PKCheckInterval is the period of the checks of the catalog's
	// version, which reload the keys when one may have changed (0: none).
	PKCheckInterval time.Duration
	HUP             <-chan struct{} // each value reloads the key cache

	Logger *slog.Logger

	// Metrics are updated by the run (nil: a set of its own, not served).
	// Server (nil: none), which serves them, gets the run's readiness
	// input; the caller runs it. A replication connection that stays
	// silent StallTimeout (default 1m) is reopened.
	Metrics      *metrics.Metrics
	Server       *metrics.Server
	StallTimeout time.Duration
	// Connect opens a normal connection to the database for the slot
	// watcher, which samples the replication lag every LagInterval
	// (default 10s) and writes a heartbeat every Heartbeat (0: none).
	// nil: no watcher.
	Connect     func(ctx context.Context) (*pgx.Conn, error)
	LagInterval time.Duration
	Heartbeat   time.Duration
	// HeartbeatConnect, if set, opens the connection the heartbeat writes
	// on instead of Connect's: the primary's, when the slot is on a hot
	// standby (--heartbeat-dsn).
	HeartbeatConnect func(ctx context.Context) (*pgx.Conn, error)
	// ProgressInterval is the period of the progress line (default 10s).
	ProgressInterval time.Duration
	// Snapshot: the initial snapshot, and how requested ones are read;
	// they need Connect.
	Snapshot SnapshotConfig
}

// SnapshotConfig is the --snapshot flags' (see package snapshot).
type SnapshotConfig struct {
	Mode      snapshot.Mode
	Table     catalog.Name // the state table
	ChunkRows int
	Workers   int
	Poll      time.Duration // how often requests are looked for
}

// parser decodes one plugin's messages; see decode/testdecoding and
// decode/wal2json.
type parser interface {
	Parse(data []byte, lsn pglogrepl.LSN) (*decode.Event, error)
}

func newParser(p decode.Plugin) (parser, error) {
	switch p {
	case decode.TestDecoding:
		return testdecoding.New(), nil
	case decode.Wal2JSON:
		return wal2json.New(), nil
	case decode.PGOutput:
		return pgoutput.New(), nil
	}
	return nil, fmt.Errorf("output plugin %s is not supported yet", p)
}

// Run streams until ctx is cancelled (a clean stop: nil) or a stage fails.
func Run(ctx context.Context, cfg Config) (err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New("", "")
	}
	cfg.Source.Logger = log
	// pgoutput sends logical messages only when asked: the heartbeat's,
	// and the snapshot's watermarks.
	cfg.Source.Messages = cfg.Connect != nil
	cfg.Source.Heartbeat = cfg.Heartbeat > 0
	cfg.Source.HeartbeatElsewhere = cfg.HeartbeatConnect != nil
	// A replication connection as stuck as readiness would say is given
	// up and reopened: allow at least three status periods for a reply.
	cfg.Source.ReceiveTimeout = max(cmp.Or(cfg.StallTimeout, time.Minute), 3*cmp.Or(cfg.Source.StatusInterval, 10*time.Second))
	p, err := newParser(cfg.Source.Plugin)
	if err != nil {
		return err
	}
	if cfg.Source.Plugin == decode.PGOutput && !cfg.Source.NoStreaming {
		if err := spool.CheckDir(cfg.SpoolDir); err != nil {
			return err
		}
	}
	if err := checkModes(cfg); err != nil {
		return err
	}
	keys := catalog.New(cfg.Keys, log)
	if err := keys.Refresh(ctx); err != nil {
		return err
	}
	f, err := format.New(cfg.Formatter, format.Options{Plugin: cfg.Source.Plugin, FullChange: cfg.FullChange, BaseType: keys.BaseType})
	if err != nil {
		return err
	}

	flt := filter.New(cfg.TablePat, cfg.Operations)
	warnUnmatchedPattern(ctx, cfg, flt, log)

	picked := func(schema, table string) bool {
		return flt.Table(decode.Table{Schema: schema, Name: table, Raw: schema + "." + table})
	}
	if cfg.PublicationFromPattern {
		cfg.Source.PublicationTables = picked
	}
	changes := flt.Op(decode.Update) || flt.Op(decode.Delete)
	cfg.Source.Published = func(schema, table string, keyed bool) bool {
		return changes && (keyed || cfg.publishesKeyless()) && picked(schema, table)
	}
	tracker := checkpoint.New(0)
	cfg.Source.Position = tracker
	cfg.Snapshot.Table = cmp.Or(cfg.Snapshot.Table, catalog.Name{Schema: "public", Table: "pg2kinesis_snapshot"})
	if cfg.Connect != nil {
		cfg.Source.BeforeCreateSlot = func(ctx context.Context) error {
			return snapshot.ForgetSlot(ctx, cfg.Connect, cfg.Snapshot.Table, cfg.Source.Slot)
		}
	}
	src := source.New(cfg.Source)
	var h *changeHandler // set before the sink runs, and so before any ack
	snk, err := cfg.NewSink(func(seqs []uint64) {
		tracker.Ack(seqs...) // once per Kinesis entry, not per record
		h.stats.acked.Add(uint64(len(seqs)))
	})
	if err != nil {
		return err
	}
	defer func() {
		// The stdout sink writes out what it still buffers: an error
		// there is records lost for the reader, not to be dropped.
		if cerr := snk.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close the sink: %w", cerr)
		}
	}()
	h = newChangeHandler(src, tracker, p, flt, keys, f, snk, cfg, log)
	if po, ok := p.(*pgoutput.Parser); ok {
		h.streams = &streams{parser: po, spool: spool.New(cfg.SpoolDir)}
		defer func() { _ = h.streams.spool.Close() }()
	}

	// An initial_only snapshot ends the run cleanly once delivered.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	h.stateTable = cfg.Snapshot.Table
	var snaps *snapshot.Runner
	if cfg.Connect != nil {
		snaps = newSnapshots(cfg, h, tracker, keys, flt, stop, log)
	} else if cfg.Snapshot.Mode != "" && cfg.Snapshot.Mode != snapshot.Never {
		return fmt.Errorf("--snapshot=%s needs a normal connection to the database", cfg.Snapshot.Mode)
	}

	obs := &observer{src: src, tracker: tracker, keys: keys, delivery: h.delivery, stats: h.stats,
		watch: newWatcher(cfg, src, log), acks: &ackWatch{tracker: tracker}, snap: snaps}
	obs.register(cfg.Metrics)

	// The sink, the cache refresher and the observers outlive the source's
	// context: at a clean stop the source drains the sink before they end.
	// A fatal error of any of them stops the source at once.
	helpers := []func(context.Context) error{
		snk.Run,
		func(ctx context.Context) error {
			return keys.Watch(ctx, cfg.PKRefreshInterval, cfg.PKCheckInterval, cfg.HUP)
		},
		func(ctx context.Context) error {
			return obs.progress(ctx, cmp.Or(cfg.ProgressInterval, 10*time.Second), log)
		},
	}
	if cfg.Server != nil {
		cfg.Server.SetState(obs.state)
		helpers = append(helpers, obs.acks.watch)
	}
	if obs.watch != nil && cfg.HeartbeatConnect != nil {
		// Its samples wait for the stream (Ready), its heartbeats on the
		// primary do not: they help the slot's creation on a standby.
		helpers = append(helpers, obs.watch.Run)
	} else if obs.watch != nil {
		helpers = append(helpers, func(ctx context.Context) error {
			// Until then the slot may not exist yet (it may be created
			// at start).
			select {
			case <-src.Started():
			case <-ctx.Done():
				return nil
			}
			return obs.watch.Run(ctx)
		})
	}
	if snaps != nil {
		helpers = append(helpers, func(ctx context.Context) error {
			select { // the watermarks must be read back
			case <-src.Started():
			case <-ctx.Done():
				return nil
			}
			return snaps.Run(ctx)
		})
	}
	return lifetime.Run(ctx, func(ctx context.Context) error { return src.Run(ctx, h) }, helpers...)
}

// publishesKeyless says whether tables without a key are published: with
// --full-change, as the original did, and always in JSON, a format of ours
// with no original behaviour to keep ("pk": null). The handler and the
// start's warning of wal2json's dropped changes both ask it.
func (c Config) publishesKeyless() bool {
	return c.FullChange || c.Formatter == format.JSON
}

// checkModes rejects a partition key or oversize policy the handler does
// not know, which it would otherwise take for the default (config checks
// the flags; this guards callers that fill Config themselves).
func checkModes(cfg Config) error {
	if cfg.PartitionKey != "" && !slices.Contains(format.PartitionKeys, cfg.PartitionKey) {
		return fmt.Errorf("unknown partition key %q: want one of %v", cfg.PartitionKey, format.PartitionKeys)
	}
	if cfg.Oversize != "" && !slices.Contains(sink.OversizePolicies, cfg.Oversize) {
		return fmt.Errorf("unknown oversize policy %q: want one of %v", cfg.Oversize, sink.OversizePolicies)
	}
	return nil
}

// newWatcher is the slot watcher, feeding the lag and heartbeat metrics;
// nil when the run has no normal connection.
func newWatcher(cfg Config, src *source.Source, log *slog.Logger) *slotwatch.Watcher {
	if cfg.Connect == nil {
		return nil
	}
	m := cfg.Metrics
	active := src.Streaming
	var ready <-chan struct{}
	if cfg.HeartbeatConnect != nil {
		// A slot being created on a standby waits for the primary to log
		// its running transactions, which it does after WAL activity: the
		// heartbeat on the primary is that activity.
		active = func() bool { return src.Streaming() || src.CreatingSlot() }
		ready = src.Started()
	}
	return slotwatch.New(slotwatch.Config{
		Connect: cfg.Connect, HeartbeatConnect: cfg.HeartbeatConnect, Slot: cfg.Source.Slot, Ready: ready,
		SampleInterval: cfg.LagInterval, Heartbeat: cfg.Heartbeat, Active: active, Logger: log,
		Sampled: func(s slotwatch.Sample) {
			m.LagBytes.Set(float64(s.Lag))
			m.RetainedWAL.Set(float64(s.Retained))
		},
		OnHeartbeat: m.Heartbeats.Inc,
	})
}

// warnUnmatchedPattern warns once at start when --table-pat finds no
// table: most likely a typo, but not fatal, since a matching table may be
// created later and its changes will then be published.
func warnUnmatchedPattern(ctx context.Context, cfg Config, flt *filter.Filter, log *slog.Logger) {
	if cfg.TablePat == nil || cfg.Tables == nil {
		return
	}
	tables, err := cfg.Tables(ctx)
	if err != nil {
		log.Warn("cannot check which tables --table-pat matches", "table_pat", cfg.TablePat.String(), "err", err)
		return
	}
	for _, t := range tables {
		if flt.Table(t) {
			return
		}
	}
	log.Warn("--table-pat matches no table of the database: nothing is published until a matching table is created",
		"table_pat", cfg.TablePat.String(), "tables", len(tables))
}
