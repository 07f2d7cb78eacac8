// Package lifetime runs a task beside helpers that outlive its stop: a
// replication run drains its sink at shutdown, and the sink, the metrics
// server and the observers must keep running until the drain is done.
package lifetime

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// Run runs main and each helper until main returns. A stop of ctx reaches
// main only: the helpers go on while main winds down, and end when it
// returns. The first error of any of them stops main and the others, and
// Run returns it.
func Run(ctx context.Context, main func(context.Context) error, helpers ...func(context.Context) error) error {
	helpCtx, stopHelpers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHelpers()
	g, gctx := errgroup.WithContext(helpCtx)
	mainCtx, stopMain := context.WithCancel(ctx)
	defer stopMain()
	context.AfterFunc(gctx, stopMain)
	for _, h := range helpers {
		g.Go(func() error { return h(gctx) })
	}
	g.Go(func() error {
		defer stopHelpers()
		return main(mainCtx)
	})
	return g.Wait()
}
