package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// shortRun starts pg2kinesis (with env added to a clean environment) on
// the database of admin, with a slot it creates, waits until the row it inserts into items is printed, calls
// streaming (if any) and stops it with SIGTERM. It returns everything the
// process wrote, stdout and stderr.
func shortRun(t *testing.T, admin *pgx.Conn, env []string, streaming func(), args ...string) string {
	t.Helper()
	if _, err := admin.Exec(t.Context(), "CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, append([]string{"--sink", "stdout", "--create-slot", "-f", "CSV", "--log-level", "debug"}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testenv.LogBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var out bytes.Buffer
	found := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stdout)
		seen := false
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "public.items") && !seen {
				seen = true
				close(found)
			}
		}
	}()
	testenv.WaitSlotStreaming(t, admin, "pg2kinesis")
	if streaming != nil {
		streaming()
	}
	var id int
	if err := admin.QueryRow(t.Context(), "INSERT INTO items SELECT coalesce(max(id), 0) + 1 FROM items RETURNING id").Scan(&id); err != nil {
		t.Fatal(err)
	}
	select {
	case <-found:
	case <-time.After(15 * time.Second):
		t.Fatalf("no record for row %d; stderr:\n%s", id, stderr.String())
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	<-copied
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, stderr.String())
	}
	return out.String() + stderr.String()
}

func secretFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The password is given in every way pg2kinesis takes one, against a server
// that checks it with SCRAM; whether the run succeeds or fails, with debug
// logging, no byte of the output carries it.
func TestPasswordNeverPrinted(t *testing.T) {
	const password = "Pw-4Dm1n-s3cr3t"
	dsn := testenv.PasswordCluster(t, "wal_level = logical", password)
	admin := testenv.Connect(t, dsn+" password="+password)
	cfg, err := pgx.ParseConfig(dsn + " password=" + password)
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword("postgres", password), Host: cfg.Host + ":" + strconv.Itoa(int(cfg.Port)), Path: "/postgres", RawQuery: "sslmode=disable"}
	leaks := func(what, out string) {
		t.Helper()
		for _, s := range []string{password, url.QueryEscape(password), "wrong-" + password} {
			if strings.Contains(out, s) {
				t.Errorf("%s: the output contains %q:\n%s", what, s, out)
			}
		}
	}

	leaks("DSN, successful run", shortRun(t, admin, nil, nil, "--pg-dsn", dsn+" password="+password))
	leaks("URL, successful run", shortRun(t, admin, nil, nil, "--pg-dsn", u.String()))
	leaks("password file, successful run", shortRun(t, admin, nil, nil, "--pg-dsn", dsn, "--pg-password-file", secretFile(t, "pw", password+"\n")))
	leaks("PGPASSWORD, successful run", shortRun(t, admin, []string{"PGPASSWORD=" + password}, nil, "--pg-dsn", dsn))
	pgpass := secretFile(t, "pgpass", fmt.Sprintf("%s:%d:*:postgres:%s\n", cfg.Host, cfg.Port, password))
	leaks("PGPASSFILE, successful run", shortRun(t, admin, []string{"PGPASSFILE=" + pgpass}, nil, "--pg-dsn", dsn))
	conf := secretFile(t, "pg2kinesis.yaml", fmt.Sprintf("pg-dsn: %q\n", dsn+" password="+password))
	leaks("config file, successful run", shortRun(t, admin, nil, nil, "--config", conf))

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"wrong password", []string{"--pg-dsn", dsn + " password=wrong-" + password}, 1, "password authentication failed"},
		{"wrong password in a URL", []string{"--pg-dsn", strings.Replace(u.String(), password, "wrong-"+password, 1)}, 1, "password authentication failed"},
		{"wrong password file", []string{"--pg-dsn", dsn, "--pg-password-file", secretFile(t, "wrong", "wrong-"+password)}, 1, "password authentication failed"},
		{"bad host", []string{"--pg-dsn", "host=127.0.0.1 port=1 user=postgres sslmode=disable password=" + password}, 1, "127.0.0.1"},
		{"unparsable DSN", []string{"--pg-dsn", "host=127.0.0.1 port=notaport password=" + password}, 2, "--pg-dsn"},
		{"unparsable URL", []string{"--pg-dsn", "postgres://postgres:" + password + "@127.0.0.1:notaport/x"}, 2, "--pg-dsn"},
		{"unquoted DSN", []string{"--pg-dsn", "host=127.0.0.1", "password=" + password}, 2, "quote the whole --pg-dsn value"},
		{"space in an unquoted password", []string{"--pg-dsn", "host=127.0.0.1 password=x " + password}, 2, `a word without "="`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := pg2kinesis(t, append([]string{"--sink", "stdout", "--log-level", "debug"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tc.code, tc.want)
			}
			leaks(tc.name, stdout+stderr)
		})
	}
}

// verify-full connects with the CA that signed the server's certificate,
// over TLS, and stops with a message naming the fix with another CA.
func TestVerifyFull(t *testing.T) {
	dsn, ca := testenv.TLSCluster(t, "wal_level = logical")
	admin := testenv.Connect(t, dsn)
	caFile := secretFile(t, "ca.pem", string(ca.CertPEM))
	otherCA := secretFile(t, "other.pem", string(testenv.NewCA(t, "some other CA").CertPEM))
	tlsArgs := func(ca string) []string {
		return []string{"--pg-dsn", dsn, "--pg-sslmode", "verify-full", "--pg-sslrootcert", ca}
	}

	shortRun(t, admin, nil, func() {
		// Every connection of this server is pg2kinesis' or admin's, which
		// does not use TLS: wait for a walsender over TLS.
		waitFor(t, 10*time.Second, "a replication connection over TLS", func() bool {
			var n int
			err := admin.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_ssl s
				JOIN pg_stat_activity a USING (pid) WHERE s.ssl AND a.backend_type = 'walsender'`).Scan(&n)
			return err == nil && n > 0
		})
	}, tlsArgs(caFile)...)

	_, stderr, code := pg2kinesis(t, append([]string{"--sink", "stdout"}, tlsArgs(otherCA)...)...)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	if code != 1 || !strings.Contains(last, "TLS certificate failed verification") ||
		!strings.Contains(last, "--pg-sslrootcert") || !strings.Contains(last, "unknown authority") {
		t.Fatalf("wrong CA: exit %d, stderr %q", code, stderr)
	}

	_, stderr, code = pg2kinesis(t, "--pg-dsn", dsn, "--pg-sslrootcert", caFile, "--sink", "stdout")
	if code != 2 || !strings.Contains(stderr, "--pg-sslmode verify-full") {
		t.Fatalf("CA with sslmode disable: exit %d, stderr %q", code, stderr)
	}
}
