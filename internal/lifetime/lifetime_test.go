package lifetime

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name       string
		stopParent bool  // cancel Run's context while main runs
		helperErr  error // the helper fails at once
		want       error
	}{
		{name: "a stop reaches main, not the helper", stopParent: true},
		{name: "a failing helper stops main", helperErr: boom, want: boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			helperDone := make(chan struct{})
			helperAliveAtMainEnd := false
			mainFn := func(mctx context.Context) error {
				if tc.stopParent {
					cancel()
				}
				<-mctx.Done()
				select {
				case <-helperDone:
				default:
					helperAliveAtMainEnd = true
				}
				return nil
			}
			helper := func(hctx context.Context) error {
				defer close(helperDone)
				if tc.helperErr != nil {
					return tc.helperErr
				}
				<-hctx.Done()
				return nil
			}
			errc := make(chan error, 1)
			go func() { errc <- Run(ctx, mainFn, helper) }()
			select {
			case err := <-errc:
				if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
					t.Fatalf("Run = %v, want %v", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return")
			}
			if tc.stopParent && !helperAliveAtMainEnd {
				t.Fatal("the stop reached the helper before main had wound down")
			}
			select {
			case <-helperDone:
			default:
				t.Fatal("the helper outlived Run")
			}
		})
	}
}

// When main returns of its own, the helpers are stopped.
func TestRunMainEndsHelpers(t *testing.T) {
	stopped := false
	err := Run(context.Background(), func(context.Context) error { return nil },
		func(ctx context.Context) error { <-ctx.Done(); stopped = true; return nil })
	if err != nil || !stopped {
		t.Fatalf("Run = %v, helper stopped %t; want nil and true", err, stopped)
	}
}
