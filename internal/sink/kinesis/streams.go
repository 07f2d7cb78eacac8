package kinesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/pg2kinesis/pg2kinesis/internal/backoff"
	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
	"github.com/pg2kinesis/pg2kinesis/internal/sink"
)

// Streams sends each record to the stream its Record.Stream names (per
// table streams: --stream-name with {schema} and {table}, or --route).
// Each stream has a Sink of its own, with its shard map, queues, senders
// and resharding, made when a record first names it; they share one
// buffer (Config.MaxBuffered, 16 MiB), so that memory stays bounded
// however many streams there are, and one AckFunc, so that the checkpoint moves only
// past what every stream acknowledged. A stream whose shards are slow can
// fill the shared buffer and so hold the others back: the price of the
// bound.
type Streams struct {
	base   Config // of every stream's Sink, but Stream
	ensure func(ctx context.Context, stream string) error

	mu     sync.Mutex
	sinks  map[string]*Sink
	order  []*Sink         // in the order made, for Run, Drain
	g      *errgroup.Group // nil until Run starts
	gctx   context.Context // Run's group context
	closed bool            // Run is over: no Sink may be started
}

var _ sink.Sink = (*Streams)(nil)

// NewStreams prepares the per-table streams. ensure checks that a stream
// exists, or creates it (EnsureStream, with --create-stream), before its
// first record: a missing stream is an error naming it. cfg.Stream is
// ignored.
func NewStreams(cfg Config, ensure func(ctx context.Context, stream string) error) *Streams {
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = 16 << 20
	}
	cfg.Buffer = semaphore.NewWeighted(int64(cfg.MaxBuffered))
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewKinesis() // one set for all the streams
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	return &Streams{base: cfg, ensure: ensure, sinks: map[string]*Sink{}}
}

// Put hands r to its stream's Sink, making it first if need be (which
// checks the stream, or creates it, and lists its shards: Put blocks
// meanwhile).
func (m *Streams) Put(ctx context.Context, r sink.Record) error {
	s, err := m.sink(ctx, r.Stream)
	if err != nil {
		return err
	}
	return s.Put(ctx, r)
}

func (m *Streams) sink(ctx context.Context, name string) (*Sink, error) {
	if name == "" {
		return nil, errors.New("kinesis sink: a record names no stream")
	}
	m.mu.Lock()
	s := m.sinks[name]
	m.mu.Unlock()
	if s == nil {
		return m.open(ctx, name)
	}
	return s, nil
}

// open makes name's Sink, retrying what Kinesis may answer differently a
// moment later (throttling: a burst of new tables makes a burst of
// DescribeStreamSummary calls; 5xx, the network), and adds it to the
// running ones. It holds no lock while it calls Kinesis, so that a
// sibling's failure can stop Run meanwhile.
func (m *Streams) open(ctx context.Context, name string) (*Sink, error) {
	cfg := m.base
	cfg.Stream = ByName(name)
	var s *Sink
	for attempt := 0; ; attempt++ {
		err := m.ensure(ctx, name)
		if err == nil {
			s, err = New(ctx, cfg)
		}
		if err == nil {
			break
		}
		// EnsureStream's own verdicts (missing, being deleted) wrap no
		// call's error: they are final, as is what classify says is.
		var op *smithy.OperationError
		if ctx.Err() != nil || !errors.As(err, &op) || classify(err) == classFatal {
			return nil, err
		}
		wait := backoff.Delay(attempt, 100*time.Millisecond, m.base.MaxBackoff)
		m.base.Logger.Warn("cannot open the stream yet; retrying", "stream", name, "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("kinesis sink: stream %q: the sink has stopped", name)
	}
	if prev := m.sinks[name]; prev != nil {
		return prev, nil // made by a concurrent Put meanwhile; s never ran
	}
	m.sinks[name] = s
	m.order = append(m.order, s)
	if m.g != nil {
		// Not closed: the group's keeper (see Run) has not returned, so
		// the group is still waited on.
		gctx := m.gctx
		m.g.Go(func() error { return s.Run(gctx) })
	}
	m.base.Logger.Info("sending to a new stream", "stream", name, "streams", len(m.order))
	return s, nil
}

// Run runs every stream's Sink, those made later included, until ctx ends
// or one fails.
func (m *Streams) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	m.mu.Lock()
	m.g, m.gctx = g, gctx
	for _, s := range m.order {
		g.Go(func() error { return s.Run(gctx) })
	}
	m.mu.Unlock()
	// The keeper holds the group open while it runs: a Sink made by Put
	// meanwhile joins it. It marks the end under m.mu, so that open never
	// adds to a group whose Wait may have returned.
	g.Go(func() error {
		<-gctx.Done()
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		return nil
	})
	return g.Wait()
}

// Drain drains every stream's Sink.
func (m *Streams) Drain(ctx context.Context) error {
	m.mu.Lock()
	sinks := append([]*Sink(nil), m.order...)
	m.mu.Unlock()
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range sinks {
		g.Go(func() error { return s.Drain(gctx) })
	}
	return g.Wait()
}

// Close closes every stream's Sink.
func (m *Streams) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, s := range m.order {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
