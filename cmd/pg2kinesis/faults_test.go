package main

// The fault suite (make faults runs TestFault*): each scenario runs the
// workload, injects one fault into a running pg2kinesis, and checks with
// checkStream that every committed change is in the stream at least once
// and in commit order per row (the dropped slot checks the exit instead).

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv/kinesisproxy"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv/tcpproxy"
)

// rig is one scenario's database, slot, stream, workload and stream reader.
type rig struct {
	dsn    string
	conn   *pgx.Conn
	slot   string
	ep     string
	stream string
	w      *workload
	reader *streamReader
}

func newRig(t *testing.T, dsn string) *rig {
	t.Helper()
	return newRigOn(t, dsn, testenv.KinesisEndpoint(t))
}

// newRigOn is newRig with the stream on the Kinesis server at ep.
func newRigOn(t *testing.T, dsn, ep string) *rig {
	t.Helper()
	r := &rig{dsn: dsn, conn: testenv.Connect(t, dsn), slot: testenv.Name(t), ep: ep}
	r.stream = testenv.Stream(t, testenv.KinesisClient(t, ep), 2)
	r.w = newWorkload(t, dsn)
	r.reader = readStream(t, ep, r.stream)
	return r
}

// args are the daemon's flags: the scenario's own slot, full-change
// records keyed by row (what checkStream reads), and short intervals so
// that a fault shows quickly. pgDSN and endpoint may be proxies.
func (r *rig) args(t *testing.T, pgDSN, endpoint string) []string {
	t.Helper()
	return append(connArgs(t, pgDSN), "-s", r.slot, "--create-slot", "--kinesis-endpoint", endpoint, "-k", r.stream,
		"--full-change", "--partition-key", "pk", "--status-interval", "100ms", "--flush-interval", "50ms", "--max-backoff", "1s")
}

// begin starts a daemon, waits until it streams, and starts the workload.
func (r *rig) begin(t *testing.T, args []string) *daemon {
	t.Helper()
	d := startDaemon(t, args...)
	testenv.WaitSlotStreaming(t, r.conn, r.slot)
	r.w.start(t)
	return d
}

// waitRecords waits until the stream holds n records: the fault then hits
// a daemon in the middle of the workload.
func (r *rig) waitRecords(t *testing.T, n int, d *daemon) {
	t.Helper()
	r.reader.waitDistinct(t, n, 60*time.Second, d)
}

// end stops the workload, waits until everything committed is in the
// stream, stops d and checks the stream. When a change is missing it does
// not wait for the timeout: once the slot is past the last commit (so
// pg2kinesis holds nothing more to send) the stream gets 15 s to be read
// out, then checkStream names what is missing.
func (r *rig) end(t *testing.T, d *daemon) {
	t.Helper()
	want, changes := r.w.finish(t)
	last := r.w.lastCommitLSN()
	var recs []kinesis.TailRecord
	var settled time.Time
	deadline := time.Now().Add(120 * time.Second)
	for {
		running(t, d)
		recs = r.reader.snapshot()
		if distinct(recs) >= changes {
			break
		}
		if settled.IsZero() && last != "" && r.slotPassed(t, last) {
			settled = time.Now()
		}
		if (!settled.IsZero() && time.Since(settled) > 15*time.Second) || time.Now().After(deadline) {
			t.Errorf("the stream holds %d distinct records, want %d", distinct(recs), changes)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.stop(t)
	checkStream(t, recs, want)
	if t.Failed() {
		t.Logf("log:\n%s", d.log())
	}
}

func distinct(recs []kinesis.TailRecord) int {
	seen := make(map[string]bool, len(recs))
	for _, rec := range recs {
		seen[string(rec.Data)] = true
	}
	return len(seen)
}

// slotPassed reports whether the slot's confirmed_flush_lsn is at or past
// lsn. It reconnects once if the server was restarted under r.conn.
func (r *rig) slotPassed(t *testing.T, lsn string) bool {
	t.Helper()
	const q = "SELECT confirmed_flush_lsn >= $1::pg_lsn FROM pg_replication_slots WHERE slot_name = $2"
	var ok bool
	if err := r.conn.QueryRow(context.Background(), q, lsn, r.slot).Scan(&ok); err != nil {
		r.conn = testenv.Connect(t, r.dsn)
		if err := r.conn.QueryRow(context.Background(), q, lsn, r.slot).Scan(&ok); err != nil {
			t.Fatal(err)
		}
	}
	return ok
}

// slowKinesis is an endpoint in front of kinesalite that throttles two
// PutRecords calls in three, as a busy stream does. Records then wait in
// pg2kinesis for a while before Kinesis stores them, so that a kill finds
// some in flight: a checkpoint that ran ahead of the acknowledgements
// would lose them.
func (r *rig) slowKinesis(t *testing.T) string {
	t.Helper()
	p := kinesisproxy.Start(t, r.ep)
	p.Plan = func(n int) kinesisproxy.Fault {
		if n%3 != 0 {
			return kinesisproxy.Throttle
		}
		return kinesisproxy.Pass
	}
	return p.URL
}

func kill9(t *testing.T, d *daemon) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.done
}

// running fails the test if d has exited.
func running(t *testing.T, d *daemon) {
	t.Helper()
	select {
	case err := <-d.done:
		t.Fatalf("pg2kinesis exited (%v); log:\n%s", err, d.log())
	default:
	}
}

func waitLog(t *testing.T, d *daemon, what string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for strings.Count(d.log(), what) < n {
		running(t, d)
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d× %q in the log:\n%s", n, what, d.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// (a) kill -9 mid-stream, commits while it is down, restart.
func TestFaultKillNine(t *testing.T) { faultKillNine(t) }

// (a) with wal2json, whose restart re-reads JSON from the slot's position.
func TestFaultKillNineWal2json(t *testing.T) {
	testenv.RequirePlugin(t, "wal2json")
	faultKillNine(t, "--pg-slot-output-plugin", "wal2json")
}

// (a) with pgoutput, on every server version: protocol 1 before 14.
func TestFaultKillNinePgoutput(t *testing.T) {
	faultKillNine(t, "--pg-slot-output-plugin", "pgoutput")
}

func faultKillNine(t *testing.T, flags ...string) {
	t.Parallel()
	r := newRig(t, testenv.Database(t))
	args := append(r.args(t, r.dsn, r.slowKinesis(t)), flags...)
	d := r.begin(t, args)
	r.waitRecords(t, 500, d)
	// Kill while Kinesis holds records back: a checkpoint that ran ahead
	// of its acknowledgements would lose them.
	base := metricsURL(t, d)
	waitFor(t, 30*time.Second, "records in flight", func() bool {
		v, _ := metric(scrape(t, base), "pg2kinesis_records_in_flight")
		return v > 0
	})
	kill9(t, d)
	r.w.waitTxns(t, 300)
	d = startDaemon(t, args...)
	r.w.waitTxns(t, 300)
	r.end(t, d)
}

// (a') kill -9 with pgoutput streaming large transactions before their
// commit (logical_decoding_work_mem at its minimum, on the test's own
// server): the spool of an unfinished transaction dies with the process,
// and the server streams the transaction again from its start.
func TestFaultKillNinePgoutputStreaming(t *testing.T) {
	t.Parallel()
	testenv.RequireMajor(t, 14, "streaming of in-progress transactions (pgoutput protocol 2)")
	srv := testenv.StartCluster(t, testenv.ClusterOptions{Conf: "wal_level = logical\nlogical_decoding_work_mem = 64kB"})
	r := newRig(t, srv.DSN)
	r.w.keys = 1000 // updates of many rows then pass 64 kB
	args := append(r.args(t, r.dsn, r.slowKinesis(t)), "--pg-slot-output-plugin", "pgoutput")
	d := r.begin(t, args)
	r.waitRecords(t, 3000, d)
	// Kill while a streamed transaction sits in the spool (an unlinked
	// file the process holds open).
	spooling := func() bool {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.cmd.Process.Pid))
		for _, fd := range fds {
			if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", d.cmd.Process.Pid, fd.Name())); strings.Contains(target, "pg2kinesis-txn-") {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(60 * time.Second)
	for !spooling() {
		running(t, d)
		if time.Now().After(deadline) {
			t.Fatal("no streamed transaction spooled within 60s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	kill9(t, d)
	r.w.waitTxns(t, 300)
	d = startDaemon(t, args...)
	r.w.waitTxns(t, 300)
	r.end(t, d)
	var streamed int64
	if err := r.conn.QueryRow(t.Context(), "SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = $1", r.slot).Scan(&streamed); err != nil {
		t.Fatal(err)
	}
	if streamed == 0 {
		t.Fatal("the server streamed no transaction before its commit: the scenario did not test the spool")
	}
	t.Logf("%d transactions streamed before their commit", streamed)
}

// (b) pg_ctl restart -m fast of the server mid-stream: pg2kinesis
// reconnects, the workload too. A throwaway cluster: the shared one serves
// other tests.
func TestFaultPostgresRestart(t *testing.T) {
	t.Parallel()
	srv := testenv.StartCluster(t, testenv.ClusterOptions{Conf: "wal_level = logical"})
	r := newRig(t, srv.DSN)
	d := r.begin(t, r.args(t, r.dsn, r.ep))
	r.waitRecords(t, 500, d)
	srv.Restart(t)
	waitLog(t, d, "replication connection lost; reconnecting", 1)
	r.w.waitTxns(t, 300)
	waitLog(t, d, "streaming from replication slot", 2)
	r.end(t, d)
}

// (c) Kinesis killed (kinesalite, SIGKILL) and restarted on its data 10 s
// later: pg2kinesis retries without exiting, and the slot never passes a
// commit made during the outage; afterwards everything arrives.
func TestFaultKinesisOutage(t *testing.T) {
	t.Parallel()
	k := testenv.StartKinesalite(t)
	r := newRigOn(t, testenv.Database(t), k.Endpoint)
	d := r.begin(t, append(r.args(t, r.dsn, k.Endpoint), "--log-level", "debug"))
	r.waitRecords(t, 500, d)

	r.killKinesis(t, k)
	cut := time.Now()
	// A transaction that commits after the cut cannot be delivered before
	// the end of the outage; the WAL position after its commit bounds its
	// commit record from above. The second one counted after the cut
	// surely began after it.
	r.w.waitTxns(t, 2)
	undelivered := r.w.lastCommitLSN()
	for time.Since(cut) < 10*time.Second {
		running(t, d)
		if r.slotPassed(t, undelivered) {
			t.Fatalf("after %s of outage the slot is past %s, a commit Kinesis has not stored", time.Since(cut).Round(time.Millisecond), undelivered)
		}
		time.Sleep(100 * time.Millisecond) // the sampling period of the check
	}
	// Retries back off (to --max-backoff 1s here), not in a tight loop,
	// and go on for the whole outage; a warning is logged at most every
	// 10 s, the other retries at debug level.
	const retry = `msg="Kinesis did not store every record; retrying"`
	if n := strings.Count(d.log(), retry); n < 5 || n > 100 {
		t.Fatalf("%d retries during 10s of outage, want a backed-off few (5 to 100); log:\n%s", n, d.log())
	} else {
		t.Logf("%d retries during the outage", n)
	}
	if n := strings.Count(d.log(), "level=WARN "+retry); n < 1 || n > 2 {
		t.Fatalf("%d warnings of retries during 10s of outage, want 1 or 2; log:\n%s", n, d.log())
	}
	r.restartKinesis(t, k)
	r.w.waitTxns(t, 300)
	waitFor(t, 60*time.Second, "the slot to move past the delivered commit", func() bool { return r.slotPassed(t, undelivered) })
	r.end(t, d)
}

// killKinesis kills k, the rig's Kinesis server, after stopping the
// stream reader, which would fail on it.
func (r *rig) killKinesis(t *testing.T, k *testenv.Kinesalite) {
	t.Helper()
	r.reader.stop()
	k.Kill(t)
}

// restartKinesis restarts k on its data, and a reader that reads the
// stream again from its oldest record.
func (r *rig) restartKinesis(t *testing.T, k *testenv.Kinesalite) {
	t.Helper()
	k.Start(t)
	r.reader = readStream(t, k.Endpoint, r.stream)
}

// (d) The network between pg2kinesis and Postgres is cut (connections
// reset, new ones refused) and restored; the workload writes throughout.
func TestFaultNetworkCut(t *testing.T) {
	t.Parallel()
	r := newRig(t, testenv.Database(t))
	p, proxied := r.pgProxy(t)
	d := r.begin(t, r.args(t, proxied, r.ep))
	r.waitRecords(t, 500, d)

	p.Cut()
	// The lost connection, then a reconnect refused while the cut lasts.
	waitLog(t, d, "replication connection lost; reconnecting", 2)
	r.restoreAndEnd(t, d, p)
}

// (d') The network between pg2kinesis and Postgres goes silent: packets
// are lost, no connection is reset. pg2kinesis notices the silence (no
// answer to its request for a reply within --stall-timeout), reconnects
// once the network is back and the server has timed the old walsender out
// (wal_sender_timeout, short on this test's own server).
func TestFaultNetworkSilent(t *testing.T) {
	t.Parallel()
	srv := testenv.StartCluster(t, testenv.ClusterOptions{Conf: "wal_level = logical\nwal_sender_timeout = 3s"})
	r := newRig(t, srv.DSN)
	p, proxied := r.pgProxy(t)
	d := r.begin(t, append(r.args(t, proxied, r.ep), "--stall-timeout", "2s"))
	r.waitRecords(t, 500, d)

	p.Blackhole()
	waitLog(t, d, "although asked for a reply", 1)
	r.restoreAndEnd(t, d, p)
}

// restoreAndEnd lets the workload go on while the fault lasts, restores
// p, waits until d streams again and ends the scenario.
func (r *rig) restoreAndEnd(t *testing.T, d *daemon, p *tcpproxy.Proxy) {
	t.Helper()
	r.w.waitTxns(t, 300)
	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, "streaming from replication slot", 2)
	r.w.waitTxns(t, 300)
	r.end(t, d)
	t.Logf("proxy: %+v", p.Stats())
}

// pgProxy starts a proxy to r's Postgres and returns it with a DSN
// through it.
func (r *rig) pgProxy(t *testing.T) (*tcpproxy.Proxy, string) {
	t.Helper()
	cfg, err := pgx.ParseConfig(r.dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := tcpproxy.Start(t, net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)))
	return p, fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", p.Host, p.Port, cfg.User, cfg.Database)
}

// (e) The slot is dropped from under a running pg2kinesis: it exits 1
// with one line on stderr saying so, and does not create a new slot
// (which would skip the changes in between).
func TestFaultSlotDropped(t *testing.T) {
	t.Parallel()
	r := newRig(t, testenv.Database(t))
	d := r.begin(t, r.args(t, r.dsn, r.ep))
	r.waitRecords(t, 100, d)

	// The walsender must be gone for the drop to succeed; pg2kinesis
	// reconnects within a second, so terminate and drop until it works.
	waitFor(t, 30*time.Second, "the slot to be dropped", func() bool {
		_, _ = r.conn.Exec(context.Background(),
			"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL", r.slot)
		_, err := r.conn.Exec(context.Background(), "SELECT pg_drop_replication_slot($1)", r.slot)
		return err == nil
	})
	var err error
	select {
	case err = <-d.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("pg2kinesis still runs 60s after its slot was dropped; log:\n%s", d.log())
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit %v (code %d), want 1; log:\n%s", err, code, d.log())
	}
	wantFatal := fmt.Sprintf("pg2kinesis: replication slot %q no longer exists", r.slot)
	var plain []string // lines that are not structured log records
	for _, l := range strings.Split(strings.TrimSpace(d.log()), "\n") {
		if !strings.HasPrefix(l, "time=") {
			plain = append(plain, l)
		}
	}
	if len(plain) != 1 || !strings.HasPrefix(plain[0], wantFatal) || !strings.Contains(plain[0], "--create-slot") {
		t.Fatalf("stderr's plain lines %q, want one starting %q; log:\n%s", plain, wantFatal, d.log())
	}
	var exists bool
	if err := r.conn.QueryRow(context.Background(),
		"SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)", r.slot).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatal("pg2kinesis created the slot again")
	}
	r.w.finish(t)
}

// (f) Two instances on one slot: the second stands by while the first
// streams, and takes over when the first is killed with -9.
func TestFaultStandbyTakesOver(t *testing.T) {
	t.Parallel()
	r := newRig(t, testenv.Database(t))
	args := r.args(t, r.dsn, r.slowKinesis(t))
	first := startDaemon(t, args...)
	testenv.WaitSlotStreaming(t, r.conn, r.slot)
	second := startDaemon(t, args...)
	waitLog(t, second, "replication slot is in use by another process; standing by", 1)
	r.w.start(t)
	r.waitRecords(t, 500, first)
	if strings.Contains(second.log(), "streaming from replication slot") {
		t.Fatalf("the standby streams while the first instance holds the slot; log:\n%s", second.log())
	}
	kill9(t, first)
	waitLog(t, second, "streaming from replication slot", 1)
	r.w.waitTxns(t, 300)
	r.end(t, second)
}
