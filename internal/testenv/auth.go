package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ServerDir makes a directory that the test server's user can read, for
// files that postgresql.conf names (hba_file, ssl_cert_file, ...). It is
// removed when the test ends.
func ServerDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pg2kinesis-files-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ServerFile writes data to dir/name with mode and, as root, gives it to the
// postgres user: the server refuses a key file it does not own or that
// others may read.
func ServerFile(t testing.TB, dir, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is masked by umask
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		chownToPostgres(t, path)
	}
	return path
}

// PasswordCluster is Cluster (with the extra postgresql.conf lines conf)
// whose TCP connections, normal and replication, need the password of the
// superuser postgres, checked with SCRAM-SHA-256. The DSN it returns has no
// password.
func PasswordCluster(t testing.TB, conf, password string) (dsn string) {
	t.Helper()
	dir := ServerDir(t)
	hba := ServerFile(t, dir, "pg_hba.conf", []byte("host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"), 0o644)
	dsn = Cluster(t, conf+"\nhba_file = '"+hba+"'\npassword_encryption = 'scram-sha-256'\n")

	// Trust until the password is set, then SCRAM from the next connection on.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to the test cluster: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "ALTER ROLE postgres PASSWORD "+quoteLiteral(password)); err != nil {
		t.Fatalf("set the password: %v", err)
	}
	ServerFile(t, dir, "pg_hba.conf", []byte("host all all 127.0.0.1/32 scram-sha-256\nhost replication all 127.0.0.1/32 scram-sha-256\n"), 0o644)
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatalf("reload pg_hba.conf: %v", err)
	}
	// The reload is asynchronous: wait until a connection without the
	// password is refused.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return dsn
		}
		_ = c.Close(context.Background())
		if time.Now().After(deadline) {
			t.Fatal("the test cluster still accepts connections without a password")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}
