package main

// Fault scenarios of snapshots (make faults runs them with the others):
// a fault in the middle of a table's snapshot, with writes going on. The
// table's snapshot then resumes after the last chunk Kinesis acknowledged
// (last_key), does not start over, and the stream folded per key still
// equals the table.

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv/kinesisproxy"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv/tcpproxy"
)

// slowProxy is an endpoint in front of ep that throttles two PutRecords
// calls in three: chunks then wait in pg2kinesis before Kinesis stores
// them, so that a fault finds some placed in the stream and not yet
// acknowledged.
func slowProxy(t *testing.T, ep string) string {
	t.Helper()
	p := kinesisproxy.Start(t, ep)
	p.Plan = func(n int) kinesisproxy.Fault {
		if n%3 != 0 {
			return kinesisproxy.Throttle
		}
		return kinesisproxy.Pass
	}
	return p.URL
}

// midSnapshot waits until items' snapshot runs and has 3 chunks
// acknowledged: the fault then hits the middle of the table.
func (r *snapRig) midSnapshot(t *testing.T, d *daemon) {
	t.Helper()
	r.waitState(t, d, "items", "running with 3 chunks acknowledged", 3*time.Minute, func(s snapState) bool {
		return s.state == "running" && s.chunks >= 3
	})
}

// walLSN is the server's current WAL position.
func (r *snapRig) walLSN(t *testing.T) pglogrepl.LSN {
	t.Helper()
	var s string
	if err := r.conn.QueryRow(context.Background(), "SELECT pg_current_wal_lsn()::text").Scan(&s); err != nil {
		t.Fatal(err)
	}
	lsn, err := pglogrepl.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

// checkResumed checks the reads of items around a fault at WAL position
// cut, when the state row said at (state running): the chunks placed
// after cut start after at.lastKey (the table did not start over), and
// the rows read both before and after cut, the re-sent ones, are at most
// the rows of the chunks placed before cut and not recorded in at: each
// such chunk holds at most chunkRows rows, and a row read again after the
// fault lies in one of them (a row of a recorded chunk has a key at most
// at.lastKey, which no later read has). A chunk is told by its reads'
// position, that of its high watermark.
func checkResumed(t *testing.T, recs []*jrec, cut pglogrepl.LSN, at snapState, chunkRows int) {
	t.Helper()
	if at.state != "running" || len(at.lastKey) != 1 {
		t.Fatalf("at the fault the state row was %+v: not in the middle of the table", at)
	}
	lastKey, err := strconv.Atoi(at.lastKey[0])
	if err != nil {
		t.Fatalf("last_key %q: %v", at.lastKey, err)
	}
	before := map[int]bool{}
	chunks := map[[2]pglogrepl.LSN]bool{} // chunks placed before the fault
	var after []*jrec
	for _, r := range recs {
		if r.Op != "read" {
			continue
		}
		if r.commit < cut {
			before[*r.item(t).PK.ID] = true
			chunks[[2]pglogrepl.LSN{r.commit, r.lsn}] = true
		} else {
			after = append(after, r)
		}
	}
	resent, early := 0, 0
	for _, r := range after {
		id := *r.item(t).PK.ID
		if id <= lastKey {
			if early++; early <= 5 {
				t.Errorf("row %d read after the fault, at or before last_key %d: the snapshot did not resume after it: %s", id, lastKey, r.data)
			}
		}
		if before[id] {
			resent++
		}
	}
	inFlight := len(chunks) - int(at.chunks)
	bound := inFlight * chunkRows
	t.Logf("at the fault: %d chunks recorded (last_key %d, %d rows), %d placed; %d rows read after it, of which %d re-sent (at most %d chunks in flight x %d rows = %d)",
		at.chunks, lastKey, at.rows, len(chunks), len(after), resent, inFlight, chunkRows, bound)
	if resent > bound {
		t.Errorf("%d rows re-sent after the fault, more than the %d chunks in flight hold (%d rows each): %d", resent, inFlight, chunkRows, bound)
	}
	if len(after) == 0 {
		t.Error("no read after the fault: the snapshot did not go on")
	}
}

// (h) kill -9 in the middle of a table's snapshot, Kinesis slow, writes
// going on; restarted with the same flags, the snapshot resumes after
// last_key and the folded stream equals the table.
func TestFaultSnapshotKillNine(t *testing.T) { faultSnapshotKillNine(t, "initial") }

// (h) restarted with --snapshot never: a table whose snapshot was under
// way resumes all the same (requested snapshots run in every mode).
func TestFaultSnapshotKillNineResumeNever(t *testing.T) { faultSnapshotKillNine(t, "never") }

func faultSnapshotKillNine(t *testing.T, restartMode string) {
	t.Parallel()
	const rows, chunkRows = 100_000, 2000
	r := newSnapRig(t, "wal2json", []string{"items"}, itemsTable, fillItems(rows))
	ep := slowProxy(t, r.ep)
	d := startDaemon(t, r.args(t, ep, "initial", chunkRows)...)
	testenv.WaitSlotStreaming(t, r.conn, r.slot)
	stop := writeItems(t, r.dsn, rows, 3)
	r.midSnapshot(t, d)
	kill9(t, d)
	at, _ := r.state(t, "items")
	cut := r.walLSN(t)
	d = startDaemon(t, r.args(t, ep, restartMode, chunkRows)...)
	r.checkResumedRun(t, d, stop, cut, at, chunkRows)
}

// checkResumedRun waits until d, which resumed the snapshot of items after
// a fault at WAL position cut, when the state was at, has delivered it;
// then stops stop's writes and d, and checks the stream: d said it
// resumed, each key's records are in order, the fold is the table, and no
// more rows were read again than the chunks in flight at the fault hold.
func (r *snapRig) checkResumedRun(t *testing.T, d *daemon, stop func() int, cut pglogrepl.LSN, at snapState, chunkRows int) {
	t.Helper()
	r.waitDone(t, d, "items")
	t.Logf("%d writes", stop())
	recs := r.checkItemsStream(t, d)
	if !strings.Contains(d.log(), "snapshot of table resumed") {
		t.Errorf("the daemon did not say it resumed the snapshot; log:\n%s", d.log())
	}
	checkResumed(t, recs, cut, at, chunkRows)
	if t.Failed() {
		t.Logf("log:\n%s", d.log())
	}
}

// (i) Postgres restarted (pg_ctl restart -m fast) in the middle of a
// table's snapshot, Kinesis slow, writes going on, pgoutput: the daemon
// reconnects, the snapshot resumes after last_key, and the folded stream
// equals the table. A throwaway cluster: the shared one serves others.
func TestFaultSnapshotPostgresRestart(t *testing.T) {
	t.Parallel()
	srv := testenv.StartCluster(t, testenv.ClusterOptions{Conf: "wal_level = logical"})
	const rows, chunkRows = 100_000, 2000
	r := newSnapRigOn(t, srv.DSN, "pgoutput", []string{"items"}, itemsTable, fillItems(rows))
	d := startDaemon(t, r.args(t, slowProxy(t, r.ep), "initial", chunkRows)...)
	testenv.WaitSlotStreaming(t, r.conn, r.slot)
	stop := writeItems(t, r.dsn, rows, 5)
	r.midSnapshot(t, d)
	at, _ := r.state(t, "items")
	cut := r.walLSN(t)
	srv.Restart(t)
	waitLog(t, d, "replication connection lost; reconnecting", 1)
	r.checkResumedRun(t, d, stop, cut, at, chunkRows)
}

// (j) Postgres restarted under a daemon that runs no snapshot
// (--snapshot never), then a snapshot asked for with pg2kinesis snapshot:
// the daemon, which went on streaming, serves it, and the folded stream
// equals the table.
func TestFaultSnapshotRequestAfterPostgresRestart(t *testing.T) {
	t.Parallel()
	srv := testenv.StartCluster(t, testenv.ClusterOptions{Conf: "wal_level = logical"})
	const rows = 5000
	r := newSnapRigOn(t, srv.DSN, "pgoutput", []string{"items"}, itemsTable, fillItems(rows))
	d := startDaemon(t, r.args(t, r.ep, "never", 1000)...)
	testenv.WaitSlotStreaming(t, r.conn, r.slot)
	stop := writeItems(t, r.dsn, rows, 6)
	srv.Restart(t)
	waitLog(t, d, "streaming from replication slot", 2)
	r.state(t, "items") // reopens r.conn
	if out, errOut, code := r.snapshotCommand(t, "--table", "items"); code != 0 {
		t.Fatalf("pg2kinesis snapshot --table items: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	r.waitDone(t, d, "items")
	t.Logf("%d writes", stop())
	r.checkItemsStream(t, d)
	if t.Failed() {
		t.Logf("log:\n%s", d.log())
	}
}

// (k) Two instances on one slot with --snapshot initial: the second
// stands by while the first snapshots; the first is killed with -9 in the
// middle of the table, the second takes over, resumes the snapshot after
// last_key, and the folded stream equals the table.
func TestFaultSnapshotStandbyTakesOver(t *testing.T) {
	t.Parallel()
	const rows, chunkRows = 60_000, 2000
	r := newSnapRig(t, "wal2json", []string{"items"}, itemsTable, fillItems(rows))
	args := r.args(t, slowProxy(t, r.ep), "initial", chunkRows)
	first := startDaemon(t, args...)
	testenv.WaitSlotStreaming(t, r.conn, r.slot)
	second := startDaemon(t, args...)
	waitLog(t, second, "replication slot is in use by another process; standing by", 1)
	stop := writeItems(t, r.dsn, rows, 9)
	r.midSnapshot(t, first)
	if strings.Contains(second.log(), "snapshot of table") {
		t.Errorf("the standby snapshots while the first instance holds the slot; log:\n%s", second.log())
	}
	kill9(t, first)
	at, _ := r.state(t, "items")
	cut := r.walLSN(t)
	waitLog(t, second, "streaming from replication slot", 1)
	r.checkResumedRun(t, second, stop, cut, at, chunkRows) // logs the second's log on failure
	if t.Failed() {
		t.Logf("first log:\n%s", first.log())
	}
}

// (l) Kinesis killed (kinesalite, SIGKILL) in the middle of a table's
// snapshot and restarted on its data 5 s later, writes going on: the
// daemon retries without exiting, the state recorded while Kinesis is down
// claims no row that Kinesis had not stored, and the snapshot completes
// with the folded stream equal to the table. The daemon reaches Kinesis
// through a proxy, cut with the kill and restored only after the stream
// as the kill left it has been read: nothing can be stored in between.
func TestFaultSnapshotKinesisOutage(t *testing.T) {
	t.Parallel()
	k := testenv.StartKinesalite(t)
	p := tcpproxy.Start(t, strings.TrimPrefix(k.Endpoint, "http://"))
	const rows, chunkRows = 60_000, 2000
	r := newSnapRigAt(t, testenv.Database(t), k.Endpoint, "pgoutput", []string{"items"}, itemsTable, fillItems(rows))
	d := startDaemon(t, r.args(t, "http://"+p.Addr(), "initial", chunkRows)...)
	testenv.WaitSlotStreaming(t, r.conn, r.slot)
	stop := writeItems(t, r.dsn, rows, 11)
	r.midSnapshot(t, d)
	r.reader.stop()
	p.Cut()
	k.Kill(t)
	var most snapState // the furthest the state went while Kinesis was down
	for cut := time.Now(); time.Since(cut) < 5*time.Second; time.Sleep(100 * time.Millisecond) {
		running(t, d)
		if s, _ := r.state(t, "items"); s.rows > most.rows {
			most = s
		}
	}
	k.Start(t)
	r.storedCovers(t, k.Endpoint, most)
	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	r.reader = readStream(t, k.Endpoint, r.stream)
	r.waitDone(t, d, "items")
	t.Logf("%d writes", stop())
	r.checkItemsStream(t, d)
	if t.Failed() {
		t.Logf("log:\n%s", d.log())
	}
}

// storedCovers checks that the stream at endpoint holds the rows that the
// state at claims delivered: at least at.rows distinct rows of items read
// with a key up to at.lastKey. Nothing is added to the stream meanwhile,
// so it waits only for the reader to read what is there.
func (r *snapRig) storedCovers(t *testing.T, endpoint string, at snapState) {
	t.Helper()
	if len(at.lastKey) != 1 {
		t.Fatalf("while Kinesis was down the state row was %+v: not in the middle of the table", at)
	}
	lastKey, err := strconv.Atoi(at.lastKey[0])
	if err != nil {
		t.Fatalf("last_key %q: %v", at.lastKey, err)
	}
	reader := readStream(t, endpoint, r.stream)
	defer reader.stop()
	deadline := time.Now().Add(time.Minute)
	for {
		ids := map[int]bool{}
		for _, rec := range parseRecords(t, reader.snapshot(), "items") {
			if id := *rec.item(t).PK.ID; rec.Op == "read" && id <= lastKey {
				ids[id] = true
			}
		}
		if int64(len(ids)) >= at.rows {
			t.Logf("while Kinesis was down the state claimed %d rows up to key %d; the stream holds %d", at.rows, lastKey, len(ids))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("while Kinesis was down the state claimed %d rows delivered up to key %d, but Kinesis stored only %d of them",
				at.rows, lastKey, len(ids))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
