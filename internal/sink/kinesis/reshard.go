package kinesis

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/errgroup"
)

// errResharded stops the senders so that Run can re-read the shards.
var errResharded = errors.New("the stream was resharded")

// reshard moves the sink to the stream's current shards. Put is blocked
// meanwhile. The old queues are sent out first, as they are: their records
// were queued before any record that the new shard map will route, and
// letting new records go first could overtake an older record of the same
// key. Only then are the shards listed again.
func (s *Sink) reshard(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, gctx := errgroup.WithContext(ctx)
	for _, q := range s.queues {
		g.Go(func() error {
			for {
				batch, _ := q.take(time.Now(), 0)
				if batch == nil {
					return nil
				}
				if err := s.deliver(gctx, q, batch); err != nil {
					return err
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	shards, err := listShards(ctx, s.cfg.API, s.cfg.Stream)
	if err != nil {
		return err
	}
	select { // the old queues' last calls may have signalled again
	case <-s.resharded:
	default:
	}
	old := len(s.queues)
	s.useShards(shards)
	s.log.Info("now sending to the stream's new shards", "before", old, "after", len(s.queues))
	return nil
}
