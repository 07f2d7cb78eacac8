package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// State is what readiness is decided on, read at each /readyz request.
type State struct {
	Streaming      bool          // the replication connection streams
	LastStatus     time.Time     // the last status update sent to Postgres
	StatusInterval time.Duration // the longest time between status updates
	InFlight       uint64        // records handed to the sink and not yet acknowledged
	// Progress is when the acknowledgements last moved, or when records
	// started waiting after none did: how long the oldest waits, at most.
	Progress time.Time
	// Details are lines /readyz shows after its verdict, whatever it is:
	// what the run is doing that does not decide readiness (snapshots).
	Details []string
}

// Ready says why a run in state st is not ready at now, or nil. A run is
// ready when it streams, has reported its position to Postgres within
// stall (or two status intervals, if longer), and, when records wait, the
// sink has acknowledged one within stall. An idle run is ready: having
// nothing to send is not a fault.
func Ready(st State, now time.Time, stall time.Duration) error {
	switch {
	case !st.Streaming:
		return errors.New("the replication connection is not streaming (connecting, reconnecting, or standing by while another process holds the slot)")
	case now.Sub(st.LastStatus) > max(stall, 2*st.StatusInterval):
		return fmt.Errorf("no status update sent to Postgres for %s", now.Sub(st.LastStatus).Round(time.Second))
	case st.InFlight > 0 && now.Sub(st.Progress) > stall:
		return fmt.Errorf("%d records waiting for the sink, the oldest unacknowledged for %s", st.InFlight, now.Sub(st.Progress).Round(time.Second))
	}
	return nil
}

// Server serves /metrics, /healthz and /readyz.
type Server struct {
	ln    net.Listener
	srv   *http.Server
	log   *slog.Logger
	state atomic.Pointer[func() State] // nil while the run starts
}

// Listen binds addr now, so that a port in use fails at start, and
// returns the server to Run. It is not ready until SetState gives
// readiness its input; /healthz answers from the start.
func Listen(addr string, m *Metrics, stall time.Duration, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on --metrics-addr %s: %w (pass another address, or an empty one to turn the metrics off)", addr, err)
	}
	s := &Server{ln: ln, log: log}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		state := s.state.Load()
		if state == nil {
			http.Error(w, "not ready: starting (checking the stream, loading the primary keys)", http.StatusServiceUnavailable)
			return
		}
		st := (*state)()
		details := ""
		for _, d := range st.Details {
			details += "\n" + d
		}
		if err := Ready(st, time.Now(), stall); err != nil {
			http.Error(w, "not ready: "+err.Error()+details, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready"+details)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// SetState gives readiness its input, once the run has started.
func (s *Server) SetState(state func() State) { s.state.Store(&state) }

// Addr is the address the server listens on (the port chosen for ":0").
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	s.log.Info("serving metrics and health checks", "addr", s.Addr(),
		"paths", "/metrics /healthz /readyz")
	shutDown := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(shutDown)
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(sctx)
	})
	err := s.srv.Serve(s.ln)
	if !stop() {
		<-shutDown // Serve returned because Shutdown began: let it finish
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics on %s: %w", s.Addr(), err)
	}
	return nil
}

// Close releases the listener of a server that Run was not called for.
func (s *Server) Close() error { return s.ln.Close() }
