package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// StandbyOptions configures a physical standby.
type StandbyOptions struct {
	// Slot, when set, is a physical slot on the primary (created if
	// missing) that the standby streams from: primary_slot_name.
	Slot string
	// Conf is appended to the standby's postgresql.conf, after the lines
	// that make it a standby (hot_standby_feedback = on, say).
	Conf string
	// ConninfoDB, when set, is the dbname of primary_conninfo, which
	// sync_replication_slots (17+) needs.
	ConninfoDB string
}

// StartStandby makes a physical standby of primary and waits until it
// streams. The matrix's servers (npm packages) ship no pg_basebackup, and
// Debian's copies its own major only, so the standby is a cold copy: the
// primary is stopped cleanly, its data directory copied, and it is
// started again. A test that starts a standby must not run the primary's
// workload meanwhile. The standby is stopped when the test ends.
func StartStandby(t testing.TB, primary *Server, opts StandbyOptions) *Server {
	t.Helper()
	pcfg, err := pgx.ParseConfig(primary.DSN)
	if err != nil {
		t.Fatalf("parse the primary's DSN: %v", err)
	}
	if opts.Slot != "" {
		// Made before the copy so that the primary keeps the WAL from the
		// copy's checkpoint on until the standby asks for it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := pgx.Connect(ctx, primary.DSN)
		if err != nil {
			cancel()
			t.Fatalf("connect to the primary: %v", err)
		}
		_, err = conn.Exec(ctx, "SELECT pg_create_physical_replication_slot($1, true) WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)", opts.Slot)
		_ = conn.Close(ctx)
		cancel()
		if err != nil {
			t.Fatalf("create physical slot %s on the primary: %v", opts.Slot, err)
		}
	}

	dir, err := os.MkdirTemp("", "pg2kinesis-standby-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		chownToPostgres(t, dir)
	}
	data := filepath.Join(dir, "data")

	run(t, "pg_ctl", "-D", primary.data, "-m", "fast", "-w", "-t", "60", "stop")
	// cp -a keeps the owner and the 0700 of the data directory, which the
	// server insists on; as root it runs as the postgres user.
	cp := exec.Command("cp", "-a", primary.data, data)
	if os.Geteuid() == 0 {
		cp = exec.Command("runuser", "-u", "postgres", "--", "cp", "-a", primary.data, data)
	}
	out, cpErr := cp.CombinedOutput()
	run(t, "pg_ctl", "-D", primary.data, "-l", primary.logFile(), "-w", "-t", "60", "start")
	if cpErr != nil {
		t.Fatalf("copy the primary's data directory: %v\n%s", cpErr, out)
	}
	// The primary's slots are its own: pg_basebackup does not copy them
	// either, and a copied logical slot would be one the test did not make.
	slots, err := filepath.Glob(filepath.Join(data, "pg_replslot", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if err := os.RemoveAll(s); err != nil {
			t.Fatal(err)
		}
	}

	port := freePort(t)
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=%s application_name=standby", pcfg.Port, pcfg.User)
	if pcfg.Password != "" {
		conninfo += " password=" + pcfg.Password
	}
	if opts.ConninfoDB != "" {
		conninfo += " dbname=" + opts.ConninfoDB
	}
	conf := fmt.Sprintf("\n# standby\nport = %d\nunix_socket_directories = '%s'\nhot_standby = on\nprimary_conninfo = '%s'\n",
		port, dir, strings.ReplaceAll(conninfo, "'", "''"))
	if opts.Slot != "" {
		conf += fmt.Sprintf("primary_slot_name = '%s'\n", opts.Slot)
	}
	conf += opts.Conf + "\n"
	appendFile(t, filepath.Join(data, "postgresql.conf"), conf)
	appendFile(t, filepath.Join(data, "standby.signal"), "")
	if os.Geteuid() == 0 {
		chownToPostgres(t, filepath.Join(data, "standby.signal"))
	}

	s := &Server{dir: dir, data: data,
		DSN: fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=disable", port, pcfg.User)}
	if pcfg.Password != "" {
		s.DSN += " password=" + pcfg.Password
	}
	run(t, "pg_ctl", "-D", data, "-l", s.logFile(), "-w", "-t", "60", "start")
	t.Cleanup(func() {
		cmd := command("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
		if out, err := cmd.CombinedOutput(); err != nil && !strings.Contains(string(out), "Is server running?") {
			t.Logf("stop test standby: %v: %s", err, out)
		}
	})
	s.waitFor(t, 60*time.Second, "the standby to stream from the primary",
		"SELECT EXISTS (SELECT FROM pg_stat_wal_receiver WHERE status = 'streaming')")
	return s
}

// Promote promotes a standby and waits until it accepts writes.
func (s *Server) Promote(t testing.TB) {
	t.Helper()
	run(t, "pg_ctl", "-D", s.data, "-w", "-t", "60", "promote")
	s.waitFor(t, 60*time.Second, "the promoted standby to leave recovery", "SELECT NOT pg_is_in_recovery()")
}

// StopImmediate stops the server the way a crash would: no checkpoint,
// connections cut, standbys told nothing.
func (s *Server) StopImmediate(t testing.TB) {
	t.Helper()
	run(t, "pg_ctl", "-D", s.data, "-m", "immediate", "-w", "-t", "60", "stop")
}

// waitFor waits until the query, which returns one boolean, returns true
// on s, failing the test after timeout.
func (s *Server) waitFor(t testing.TB, timeout time.Duration, what, query string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var ok bool
		var conn *pgx.Conn
		if conn, err = pgx.Connect(ctx, s.DSN); err == nil {
			err = conn.QueryRow(ctx, query).Scan(&ok)
			_ = conn.Close(ctx)
		}
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last error: %v); server log:\n%s", timeout, what, err, s.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logTail is the end of the server's log, for a failure message.
func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logFile())
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func appendFile(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}
