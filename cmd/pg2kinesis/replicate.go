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
	"github.com/pg2kinesis/pg2kinesis/internal/pipeline"
	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/sink/stdout"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
)

// replicate runs the main job until ctx is cancelled or a fatal error.
func replicate(ctx context.Context, cfg *config.Config, out, logOut io.Writer) error {
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	connCfg, err := cfg.PG.ReplicationConfig()
	if err != nil {
		return err
	}
	var snk sink.Sink
	switch cfg.Sink {
	case "stdout":
		snk = stdout.New(out)
		log.Info("the stdout sink prints each plugin message as the plugin wrote it; record formats are not applied yet")
	default:
		return errors.New("the kinesis sink is not implemented yet: run with --sink stdout to stream the changes to standard output")
	}
	defer snk.Close()

	// SIGHUP will refresh the primary-key cache; until there is one, it
	// must at least not kill the process as its default action would.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			log.Info("SIGHUP received: there is no primary-key cache to refresh yet")
		}
	}()

	log.Info("starting", "version", version(), "slot", cfg.SlotName, "plugin", cfg.Plugin, "sink", cfg.Sink)
	return pipeline.Run(ctx, pipeline.Config{
		Logger: log,
		Sink:   snk,
		Source: source.Config{
			Conn:            connCfg,
			Slot:            cfg.SlotName,
			Plugin:          cfg.Plugin,
			CreateSlot:      cfg.CreateSlot,
			RecreateSlot:    cfg.RecreateSlot,
			StatusInterval:  cfg.StatusInterval,
			ShutdownTimeout: cfg.ShutdownTimeout,
			MaxBackoff:      cfg.MaxBackoff,
		},
	})
}
