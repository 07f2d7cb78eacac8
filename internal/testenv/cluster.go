package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// PGBin is where the server programs of throwaway clusters are: Debian's
// PostgreSQL 15, or PG2KINESIS_TEST_PG_BIN, which the version matrix
// points at the version under test (scripts/services.sh env --pg-version N).
func PGBin() string {
	if dir := os.Getenv("PG2KINESIS_TEST_PG_BIN"); dir != "" {
		return dir
	}
	return "/usr/lib/postgresql/15/bin"
}

// ClusterOptions configures a throwaway cluster.
type ClusterOptions struct {
	// Conf is appended to postgresql.conf.
	Conf string
	// Password, when set, is the postgres user's password and TCP
	// connections must give it (scram-sha-256); the socket stays trust.
	// The DSN carries it.
	Password string
}

// Server is a throwaway Postgres server of one test.
type Server struct {
	DSN  string
	dir  string
	data string
}

// Cluster starts a throwaway Postgres server on a free loopback port with
// the given postgresql.conf lines, for tests that need server settings the
// shared service must not have (wal_level=replica, say). It is stopped when
// the test ends. As root the server runs as the postgres user.
func Cluster(t testing.TB, conf string) (dsn string) {
	t.Helper()
	return StartCluster(t, ClusterOptions{Conf: conf}).DSN
}

// StartCluster is Cluster with more options, returning the server so that
// a test can restart it.
func StartCluster(t testing.TB, opts ClusterOptions) *Server {
	t.Helper()
	if _, err := os.Stat(filepath.Join(PGBin(), "initdb")); err != nil {
		unavailable(t, "initdb in "+PGBin(), err)
	}
	dir, err := os.MkdirTemp("", "pg2kinesis-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		chownToPostgres(t, dir, data)
	}
	initdb := []string{"-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"}
	if opts.Password != "" {
		// Readable by the postgres user; removed with dir.
		pwfile := filepath.Join(dir, "pwfile")
		if err := os.WriteFile(pwfile, []byte(opts.Password+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		initdb = append(initdb, "--auth-host=scram-sha-256", "--pwfile="+pwfile)
	}
	run(t, "initdb", initdb...)

	port := freePort(t)
	extra := fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nfsync = off\n%s\n", port, dir, opts.Conf)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(extra); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	s := &Server{dir: dir, data: data,
		DSN: fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", port)}
	if opts.Password != "" {
		s.DSN += " password=" + opts.Password
	}
	run(t, "pg_ctl", "-D", data, "-l", s.logFile(), "-w", "-t", "60", "start")
	t.Cleanup(func() {
		cmd := command("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
		// A test may have stopped it (StopImmediate).
		if out, err := cmd.CombinedOutput(); err != nil && !strings.Contains(string(out), "Is server running?") {
			t.Logf("stop test cluster: %v: %s", err, out)
		}
	})
	return s
}

// logFile is where the server logs. pg_ctl needs it on every start: without
// -l the server would keep pg_ctl's output pipe open.
func (s *Server) logFile() string { return filepath.Join(s.dir, "postgres.log") }

// Restart stops the server with pg_ctl's fast mode (connections are
// terminated, walsenders included) and starts it again, waiting until it
// accepts connections.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	run(t, "pg_ctl", "-D", s.data, "-l", s.logFile(), "-m", "fast", "-w", "-t", "60", "restart")
}

func command(prog string, args ...string) *exec.Cmd {
	path := filepath.Join(PGBin(), prog)
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func run(t testing.TB, prog string, args ...string) {
	t.Helper()
	if out, err := command(prog, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", prog, err, out)
	}
}

func chownToPostgres(t testing.TB, paths ...string) {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("running as root needs a postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
