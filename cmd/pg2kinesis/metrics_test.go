package main

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv/tcpproxy"
)

var metricsAddrRE = regexp.MustCompile(`msg="serving metrics and health checks" addr=(\S+)`)

// metricsURL is where d serves its metrics: the tests' daemons listen on
// a port of their own (see cleanEnv), which the log names.
func metricsURL(t *testing.T, d *daemon) string {
	t.Helper()
	var addr string
	waitFor(t, 30*time.Second, "the metrics address in the log", func() bool {
		running(t, d)
		if m := metricsAddrRE.FindStringSubmatch(d.log()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	return "http://" + addr
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// metric sums every series of the metric name in a /metrics page; ok is
// false when the page has none.
func metric(page, name string) (sum float64, ok bool) {
	for _, line := range strings.Split(page, "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum, ok = sum+v, true
		}
	}
	return sum, ok
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	code, page := httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: status %d", code)
	}
	return page
}

// During a workload the counters follow the rows written and the sampled
// lag in bytes is above 0; after it, every change read is published and
// acknowledged, and the lag falls to 0. The
// server is the test's own: on the shared one, other tests' writes would
// keep the WAL moving past the slot between two samples.
func TestMetricsFollowTheWorkload(t *testing.T) {
	t.Parallel()
	srv := testenv.StartCluster(t, testenv.ClusterOptions{Conf: "wal_level = logical"})
	r := newRig(t, srv.DSN)
	d := r.begin(t, append(r.args(t, r.dsn, r.ep), "--lag-interval", "200ms"))
	base := metricsURL(t, d)
	r.waitRecords(t, 300, d)
	// While the workload writes, the slot's confirmed position trails the
	// server's WAL by at least a status interval.
	waitFor(t, 20*time.Second, "a lag in bytes above 0 while the workload writes", func() bool {
		v, _ := metric(scrape(t, base), "pg2kinesis_replication_lag_bytes")
		return v > 0
	})
	mid := scrape(t, base)
	if v, _ := metric(mid, "pg2kinesis_changes_published_total"); v < 300 {
		t.Fatalf("mid-workload: %v changes published, want at least the 300 records already in the stream", v)
	}
	if v, _ := metric(mid, "pg2kinesis_up"); v != 1 {
		t.Fatalf("pg2kinesis_up = %v while streaming", v)
	}
	want, changes := r.w.finish(t)
	recs := r.reader.waitDistinct(t, changes, 60*time.Second, d)

	// The flush LSN and the sampled lag settle a moment after the last
	// acknowledgement: the lag in bytes is sampled every --lag-interval.
	var page string
	waitFor(t, 20*time.Second, "the lag to fall to 0", func() bool {
		page = scrape(t, base)
		secs, _ := metric(page, "pg2kinesis_replication_lag_seconds")
		bytes, _ := metric(page, "pg2kinesis_replication_lag_bytes")
		return secs == 0 && bytes == 0
	})
	for name, want := range map[string]float64{
		"pg2kinesis_changes_read_total":            float64(changes),
		"pg2kinesis_changes_published_total":       float64(changes),
		"pg2kinesis_records_acknowledged_total":    float64(changes),
		"pg2kinesis_records_in_flight":             0,
		"pg2kinesis_changes_filtered_total":        0,
		"pg2kinesis_changes_skipped_total":         0,
		"pg2kinesis_kinesis_records_retried_total": 0,
		"pg2kinesis_reconnects_total":              0,
		"pg2kinesis_pk_cache_refreshes_total":      1,
		"pg2kinesis_up":                            1,
		"pg2kinesis_replication_lag_bytes":         0,
		"pg2kinesis_replication_lag_seconds":       0,
	} {
		if got, _ := metric(page, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if v, ok := metric(page, "pg2kinesis_slot_retained_wal_bytes"); !ok || v < 0 {
		t.Errorf("pg2kinesis_slot_retained_wal_bytes = %v (present %t), want a sample", v, ok)
	}
	for _, name := range []string{"pg2kinesis_wal_bytes_total", "pg2kinesis_record_bytes_total", "pg2kinesis_kinesis_bytes_total",
		"pg2kinesis_kinesis_records_total", "pg2kinesis_kinesis_put_records_calls_total", "pg2kinesis_flushed_lsn",
		"pg2kinesis_kinesis_put_records_duration_seconds_count"} {
		if v, _ := metric(page, name); v <= 0 {
			t.Errorf("%s = %v, want more than 0", name, v)
		}
	}
	d.stop(t)
	checkStream(t, recs, want)
	// At the default level (info), the log does not grow with the rows.
	if n := strings.Count(d.log(), "\n"); n > 40 {
		t.Errorf("%d log lines for %d changes at info level, want a few lines whatever the rows:\n%s", n, changes, d.log())
	}
}

// /readyz turns unready while Kinesis (kinesalite) is stopped and records
// wait, and ready again once it restarted and they are delivered;
// /healthz stays ok throughout.
func TestReadyzFollowsKinesis(t *testing.T) {
	t.Parallel()
	k := testenv.StartKinesalite(t)
	r := newRigOn(t, testenv.Database(t), k.Endpoint)
	d := r.begin(t, append(r.args(t, r.dsn, k.Endpoint), "--stall-timeout", "2s"))
	base := metricsURL(t, d)
	ready := func() (bool, string) {
		code, body := httpGet(t, base+"/readyz")
		return code == http.StatusOK, body
	}
	waitFor(t, 30*time.Second, "/readyz to be ready", func() bool { ok, _ := ready(); return ok })
	r.waitRecords(t, 200, d)

	r.killKinesis(t, k)
	var body string
	waitFor(t, 30*time.Second, "/readyz to be unready during the outage", func() bool {
		var ok bool
		ok, body = ready()
		return !ok
	})
	if !strings.Contains(body, "records waiting for the sink, the oldest unacknowledged for") {
		t.Fatalf("/readyz during the outage: %q, want it to say records wait", body)
	}
	if code, _ := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz during the outage: %d", code)
	}
	r.restartKinesis(t, k)
	waitFor(t, 60*time.Second, "/readyz to be ready after the outage", func() bool { ok, _ := ready(); return ok })
	r.end(t, d)
}

// /healthz answers from the start, while a slow start (here a Kinesis
// endpoint that never answers the stream check) keeps /readyz at
// "starting"; SIGTERM then stops the start cleanly.
func TestHealthDuringStart(t *testing.T) {
	t.Parallel()
	dsn := testenv.Database(t)
	silent := tcpproxy.Start(t, "127.0.0.1:1") // never forwarded: blackholed from the start
	silent.Blackhole()
	d := startDaemon(t, append(connArgs(t, dsn), "-s", testenv.Name(t), "--create-slot",
		"--kinesis-endpoint", "http://"+silent.Addr(), "-k", "never-checked")...)
	base := metricsURL(t, d)
	if code, _ := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while starting: %d, want 200", code)
	}
	if code, body := httpGet(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Fatalf("/readyz while starting: %d %q, want 503 starting", code, body)
	}
	running(t, d)
	d.stop(t)
}
