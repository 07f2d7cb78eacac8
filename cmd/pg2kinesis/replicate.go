package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/pg2kinesis/pg2kinesis/internal/config"
	"github.com/pg2kinesis/pg2kinesis/internal/lifetime"
	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
	"github.com/pg2kinesis/pg2kinesis/internal/pipeline"
	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis"
	"github.com/pg2kinesis/pg2kinesis/internal/sink/stdout"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
	"github.com/pg2kinesis/pg2kinesis/internal/spool"
)

// replicate runs the main job until ctx is cancelled or a fatal error.
func replicate(ctx context.Context, cfg *config.Config, out, logOut io.Writer) error {
	log := newLogger(logOut, cfg.LogFormat, cfg.LogLevel)
	replConn, err := cfg.PG.ReplicationConfig()
	if err != nil {
		return err
	}
	queryConn, err := cfg.PG.QueryConfig()
	if err != nil {
		return err
	}
	beforeConnect, err := passwordHook(ctx, cfg, replConn)
	if err != nil {
		return err
	}
	heartbeatConn, err := cfg.HeartbeatConnConfig()
	if err != nil {
		return err
	}
	log.Info("starting", "version", version(), "commit", commit(), "slot", cfg.SlotName, "plugin", cfg.Plugin,
		"formatter", cfg.Formatter, "full_change", cfg.FullChange, "sink", cfg.Sink, "config_file", cfg.ConfigFile)
	m := metrics.New(version(), commit())
	var srv *metrics.Server
	if cfg.MetricsAddr != "" {
		// Bound now: a port in use fails at once, and /healthz answers
		// while the start (the stream check, the key cache) takes time.
		if srv, err = metrics.Listen(cfg.MetricsAddr, m, cfg.StallTimeout, log); err != nil {
			return err
		}
		defer srv.Close()
	}
	return serving(ctx, srv, func(ctx context.Context) error {
		newSink, err := sinkFactory(ctx, cfg, out, log, m.Kinesis)
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, context.Canceled) {
				log.Info("stopped while starting")
				return nil // a stop asked for during the stream check is no failure
			}
			return err
		}
		keys := keysSource(queryConn, beforeConnect)
		defer keys.Close()
		return runPipeline(ctx, cfg, pipeline.Config{
			Logger: log, NewSink: newSink, Metrics: m, Server: srv,
			Keys:    keys,
			Tables:  tablesLister(queryConn, beforeConnect),
			Connect: connector(queryConn, beforeConnect),
			Source:  source.Config{Conn: replConn, BeforeConnect: beforeConnect},
			// The heartbeat's own connection to the primary, when the slot
			// is on a standby.
			HeartbeatConnect: heartbeatConnector(heartbeatConn, beforeConnect),
		})
	})
}

// runPipeline runs the pipeline with cfg's settings and the parts that
// replicate built (pc's logger, sink, metrics, server, connections).
func runPipeline(ctx context.Context, cfg *config.Config, pc pipeline.Config) error {
	hup := make(chan struct{}, 1)
	stop := relaySIGHUP(hup)
	defer stop()

	err := pipeline.Run(ctx, pipeline.Config{
		Logger:                 pc.Logger,
		NewSink:                pc.NewSink,
		PartitionKey:           cfg.PartitionKey,
		Oversize:               cfg.Oversize,
		Route:                  route(cfg),
		Formatter:              cfg.Formatter,
		FullChange:             cfg.FullChange,
		TablePat:               cfg.TablePat,
		SpoolDir:               cfg.SpoolDir,
		PublicationFromPattern: cfg.PublicationFromPattern,
		Operations:             cfg.Operations,
		Keys:                   pc.Keys,
		Tables:                 pc.Tables,
		PKRefreshInterval:      cfg.PKRefreshInterval,
		PKCheckInterval:        cfg.PKCheckInterval,
		HUP:                    hup,
		Metrics:                pc.Metrics,
		Server:                 pc.Server,
		StallTimeout:           cfg.StallTimeout,
		Connect:                pc.Connect,
		Heartbeat:              cfg.HeartbeatInterval,
		HeartbeatConnect:       pc.HeartbeatConnect,
		LagInterval:            cfg.LagInterval,
		Snapshot: pipeline.SnapshotConfig{
			Mode: cfg.Snapshot, Table: cfg.SnapshotTable, ChunkRows: cfg.SnapshotChunkRows, Workers: cfg.SnapshotWorkers,
		},
		Source: source.Config{
			Conn:            pc.Source.Conn,
			BeforeConnect:   pc.Source.BeforeConnect,
			Slot:            cfg.SlotName,
			Plugin:          cfg.Plugin,
			CreateSlot:      cfg.CreateSlot,
			RecreateSlot:    cfg.RecreateSlot,
			Failover:        cfg.SlotFailover,
			Publication:     cfg.Publication,
			NoStreaming:     !cfg.Streaming,
			StatusInterval:  cfg.StatusInterval,
			ShutdownTimeout: cfg.ShutdownTimeout,
			MaxBackoff:      cfg.MaxBackoff,
		},
	})
	return usageClass(config.ExplainTLS(err))
}

// usageClass makes the start-time checks that failed on what the user must
// change (a table's replica identity, the spool directory) usage errors,
// exit 2 like a bad flag; other errors pass.
func usageClass(err error) error {
	var se *source.SetupError
	var de *spool.DirError
	if errors.As(err, &se) || errors.As(err, &de) {
		return &config.UsageError{Msg: err.Error()}
	}
	return err
}

// serving runs fn while srv (nil: none) serves, from before the start to
// after the drain of a stop; a failure of the server stops fn.
func serving(ctx context.Context, srv *metrics.Server, fn func(context.Context) error) error {
	if srv == nil {
		return fn(ctx)
	}
	return lifetime.Run(ctx, fn, srv.Run)
}

// relaySIGHUP turns each SIGHUP into a non-blocking send on hup (signals
// that arrive during a refresh coalesce) until the returned stop is called.
func relaySIGHUP(hup chan<- struct{}) (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sigs:
				select {
				case hup <- struct{}{}:
				default:
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// sinkFactory checks the destination now, so that a missing stream fails
// before replication starts, and returns how to build the sink once the
// pipeline has its acknowledgement function.
func sinkFactory(ctx context.Context, cfg *config.Config, out io.Writer, log *slog.Logger, m *metrics.Kinesis) (func(sink.AckFunc) (sink.Sink, error), error) {
	if cfg.Sink == sink.Stdout {
		return func(ack sink.AckFunc) (sink.Sink, error) { return stdout.New(out, cfg.FlushInterval, ack), nil }, nil
	}
	client, region, err := kinesis.NewClient(ctx, kinesis.ClientConfig{Region: cfg.KinesisRegion, Endpoint: cfg.KinesisEndpoint})
	if err != nil {
		return nil, err
	}
	stream := kinesis.StreamRef{Name: cfg.StreamName, ARN: cfg.StreamARN}
	spec := kinesis.StreamSpec{Create: cfg.CreateStream, Mode: cfg.StreamMode, Shards: cfg.ShardCount}
	kcfg := func(ack sink.AckFunc) kinesis.Config {
		return kinesis.Config{
			API: client, Stream: stream, Aggregate: cfg.Aggregate,
			FlushInterval: cfg.FlushInterval, MaxBackoff: cfg.MaxBackoff, NoShardLimit: !cfg.ShardRateLimit,
			Ack: ack, Logger: log, Metrics: m,
		}
	}
	if cfg.Router != nil {
		ensure := func(ctx context.Context, name string) error {
			return kinesis.EnsureStream(ctx, client, kinesis.ByName(name), region, spec)
		}
		// The streams named without placeholders now, the others at
		// their table's first change.
		for _, name := range cfg.Router.Fixed() {
			if err := ensure(ctx, name); err != nil {
				return nil, err
			}
		}
		return func(ack sink.AckFunc) (sink.Sink, error) { return kinesis.NewStreams(kcfg(ack), ensure), nil }, nil
	}
	if err := kinesis.EnsureStream(ctx, client, stream, region, spec); err != nil {
		return nil, err
	}
	return func(ack sink.AckFunc) (sink.Sink, error) { return kinesis.New(ctx, kcfg(ack)) }, nil
}

// route is the pipeline's Route: nil unless tables go to streams of their
// own, which only the Kinesis sink has.
func route(cfg *config.Config) func(schema, table string) (string, error) {
	if cfg.Router == nil || cfg.Sink != sink.Kinesis {
		return nil
	}
	return cfg.Router.Stream
}
