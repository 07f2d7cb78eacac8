package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

func TestReady(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	const stall = time.Minute
	for _, tc := range []struct {
		name  string
		st    State
		wants string // "" for ready
	}{
		{"streaming and idle", State{Streaming: true, LastStatus: ago(5 * time.Second)}, ""},
		{"idle for long: nothing waits", State{Streaming: true, LastStatus: ago(time.Second), Progress: ago(time.Hour)}, ""},
		{"records waiting, recent ack", State{Streaming: true, LastStatus: ago(time.Second), InFlight: 10, Progress: ago(59 * time.Second)}, ""},
		{"not streaming", State{LastStatus: ago(time.Second)}, "not streaming"},
		{"no status update", State{Streaming: true, LastStatus: ago(2 * time.Minute)}, "no status update sent to Postgres for 2m0s"},
		{"never a status update", State{Streaming: true}, "no status update"},
		{"status updates rarer than the stall timeout", State{Streaming: true, LastStatus: ago(90 * time.Second), StatusInterval: time.Hour}, ""},
		{"records stuck", State{Streaming: true, LastStatus: ago(time.Second), InFlight: 7, Progress: ago(61 * time.Second)},
			"7 records waiting for the sink, the oldest unacknowledged for 1m1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Ready(tc.st, now, stall)
			switch {
			case tc.wants == "" && err != nil:
				t.Fatalf("not ready: %v", err)
			case tc.wants != "" && (err == nil || !strings.Contains(err.Error(), tc.wants)):
				t.Fatalf("Ready = %v, want an error with %q", err, tc.wants)
			}
		})
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// The server serves the registry, liveness, and readiness from the state
// function at each request; it stops with its context.
func TestServe(t *testing.T) {
	m := New("v1.2.3", "0123abc")
	tc := m.Changes.Table("public", "orders")
	tc.Read(decode.Insert)
	tc.Read(decode.Insert)
	tc.Published(decode.Insert)
	tc.Filtered(decode.Delete)
	tc.Skipped(decode.Update, SkipNoPrimaryKey)
	tc.Read(decode.Read)
	tc.Published(decode.Read)
	m.Kinesis.ObserveCall(30 * time.Millisecond)
	m.GaugeFunc("answer", "A test gauge.", func() float64 { return 42 })

	var st atomic.Pointer[State]
	st.Store(&State{Streaming: true, LastStatus: time.Now()})
	srv, err := Listen("127.0.0.1:0", m, time.Minute, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	base := "http://" + srv.Addr()

	// While the run starts, the process is alive but not ready.
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not ready: starting") {
		t.Errorf("/readyz before SetState: %d %q", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz before SetState: %d", code)
	}
	srv.SetState(func() State { return *st.Load() })

	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`pg2kinesis_build_info{commit="0123abc",goversion="go`, `version="v1.2.3"} 1`,
		`pg2kinesis_changes_read_total{op="insert",table="public.orders"} 2`,
		`pg2kinesis_changes_published_total{op="insert",table="public.orders"} 1`,
		`pg2kinesis_changes_filtered_total{op="delete",table="public.orders"} 1`,
		`pg2kinesis_changes_skipped_total{op="update",reason="no_primary_key",table="public.orders"} 1`,
		`pg2kinesis_changes_read_total{op="read",table="public.orders"} 1`,
		`pg2kinesis_changes_published_total{op="read",table="public.orders"} 1`,
		`pg2kinesis_kinesis_put_records_calls_total 1`,
		`pg2kinesis_kinesis_put_records_duration_seconds_bucket{le="0.05"} 1`,
		`pg2kinesis_replication_lag_bytes -1`,
		`pg2kinesis_answer 42`,
		`go_goroutines `, `process_resident_memory_bytes `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, body := get(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	// The details follow the verdict, ready or not.
	details := []string{"snapshot of public.orders: running", "snapshots: 2 done"}
	st.Store(&State{Streaming: true, LastStatus: time.Now(), Details: details})
	if code, body := get(t, base+"/readyz"); code != http.StatusOK || body != "ready\n"+strings.Join(details, "\n")+"\n" {
		t.Errorf("/readyz with details: %d %q", code, body)
	}
	st.Store(&State{Details: details})
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable ||
		!strings.HasPrefix(body, "not ready: the replication connection is not streaming") || !strings.Contains(body, "\n"+details[1]) {
		t.Errorf("/readyz when not streaming: %d %q", code, body)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// A port in use fails at Listen with the flag to change.
func TestListenPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Listen(ln.Addr().String(), New("", ""), time.Minute, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "listen on --metrics-addr "+ln.Addr().String()) ||
		!strings.Contains(err.Error(), "an empty one to turn the metrics off") {
		t.Fatalf("Listen on a port in use: %v", err)
	}
}

// Past MaxTables distinct tables, changes are counted under "_other".
func TestTableLabelIsBounded(t *testing.T) {
	c := NewChanges()
	for i := range MaxTables {
		c.Table("public", fmt.Sprintf("t%d", i)).Read(decode.Insert)
	}
	a, b := c.Table("public", "late_a"), c.Table("public", "late_b")
	if a != b || a.label != "_other" {
		t.Fatalf("tables past the bound: labels %q and %q, want the shared _other", a.label, b.label)
	}
	a.Read(decode.Insert)
	b.Read(decode.Insert)
	if n := testutil.CollectAndCount(c.read); n != MaxTables+1 {
		t.Fatalf("%d series, want %d", n, MaxTables+1)
	}
	if v := testutil.ToFloat64(c.read.WithLabelValues("_other", "insert")); v != 2 {
		t.Fatalf("_other counted %v changes, want 2", v)
	}
}
