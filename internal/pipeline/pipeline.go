// Package pipeline wires the stages of a run: source → sink, with the slot
// flushed only past what the sink has delivered. It owns the errgroup.
package pipeline

import (
	"context"
	"log/slog"

	"github.com/jackc/pglogrepl"
	"golang.org/x/sync/errgroup"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
)

// Config is what a run needs.
type Config struct {
	Source source.Config
	Sink   sink.Sink
	Logger *slog.Logger
}

// Run streams until ctx is cancelled (a clean stop: nil) or a stage fails.
//
// Until decoding and formats land, each plugin message is one record, as
// the plugin printed it.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger != nil {
		cfg.Source.Logger = cfg.Logger
	}
	src := source.New(cfg.Source)
	h := &rawHandler{src: src, sink: cfg.Sink}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return src.Run(gctx, h) })
	return g.Wait()
}

// rawHandler passes plugin messages to a synchronous sink and flushes each
// one's LSN once it is delivered. Flushing a change's LSN mid-transaction is
// safe: Postgres re-sends every transaction that commits after the flushed
// LSN in full, and all transactions that committed before it were sent
// before it.
type rawHandler struct {
	src  *source.Source
	sink sink.Sink
}

func (h *rawHandler) HandleData(ctx context.Context, m pglogrepl.XLogData) error {
	if err := h.sink.Write(ctx, sink.Record{Data: m.WALData, LSN: m.WALStart}); err != nil {
		return err
	}
	h.src.Flush(m.WALStart)
	return nil
}

// HandleKeepalive flushes the server's WAL end: the sink is synchronous, so
// nothing is in flight, and an idle or filtered database must not pin WAL.
func (h *rawHandler) HandleKeepalive(_ context.Context, walEnd pglogrepl.LSN) error {
	h.src.Flush(walEnd)
	return nil
}

func (h *rawHandler) Drain(context.Context) error { return nil }
