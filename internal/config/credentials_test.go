package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The password file wins over the DSN's password and never enters the
// connection string, where an error message could quote it.
func TestPasswordFile(t *testing.T) {
	t.Setenv("PGPASSWORD", "from-env")
	for _, content := range []string{"p@ss word\n", "p@ss word\r\n", "p@ss word"} {
		path := writeFile(t, "pw", content)
		c, err := Parse([]string{"--pg-dsn", "host=a user=u password=from-dsn", "--pg-password-file", path}, env())
		if err != nil {
			t.Fatal(err)
		}
		rc, err := c.PG.ReplicationConfig()
		if err != nil {
			t.Fatal(err)
		}
		qc, err := c.PG.QueryConfig()
		if err != nil {
			t.Fatal(err)
		}
		if rc.Password != "p@ss word" || qc.Password != "p@ss word" {
			t.Errorf("file %q: passwords %q, %q, want %q", content, rc.Password, qc.Password, "p@ss word")
		}
		if strings.Contains(c.PG.ConnString(), "p@ss") {
			t.Errorf("the connection string holds the password: %s", c.PG.ConnString())
		}
	}
}

func TestCredentialUsageErrors(t *testing.T) {
	ca := testenv.NewCA(t, "config test CA")
	caFile := writeFile(t, "ca.pem", string(ca.CertPEM))
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"unreadable password file", []string{"--pg-password-file", missing}, []string{"--pg-password-file", missing}},
		{"empty password file", []string{"--pg-password-file", writeFile(t, "empty", "\n")}, []string{"--pg-password-file", "empty"}},
		{"two-line password file", []string{"--pg-password-file", writeFile(t, "two", "a\nb\n")}, []string{"--pg-password-file", "more than one line"}},
		{"password file and IAM", []string{"--pg-password-file", writeFile(t, "pw", "x"), "--pg-iam-auth"}, []string{"--pg-password-file", "--pg-iam-auth"}},
		{"unknown sslmode", []string{"--pg-sslmode", "verify"}, []string{`"verify"`, "--pg-sslmode", "verify-full"}},
		{"unreadable CA", []string{"--pg-sslrootcert", missing, "--pg-sslmode", "verify-full"}, []string{"--pg-sslrootcert", missing}},
		{"cert without key", []string{"--pg-sslcert", caFile}, []string{"--pg-sslcert", "--pg-sslkey"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.args, env())
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("Parse = %v, want a *UsageError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// A CA file is refused with an sslmode that would not use it, wherever the
// sslmode comes from; verify-ca, verify-full and require (which libpq turns
// into verify-ca when a CA is given) use it.
func TestRootCertNeedsAVerifyingSSLMode(t *testing.T) {
	ca := testenv.NewCA(t, "config test CA")
	caFile := writeFile(t, "ca.pem", string(ca.CertPEM))
	for _, tc := range []struct {
		args    []string
		pgEnv   string
		refused bool
	}{
		{args: nil, refused: true}, // the default, prefer
		{args: []string{"--pg-sslmode", "disable"}, refused: true},
		{args: []string{"--pg-sslmode", "allow"}, refused: true},
		{args: []string{"--pg-dsn", "host=h sslmode=prefer"}, refused: true},
		{args: []string{"--pg-dsn", "host=h sslmode=verify-full"}},
		{pgEnv: "verify-full"},
		{args: []string{"--pg-sslmode", "verify-ca"}},
		{args: []string{"--pg-sslmode", "require"}},
	} {
		t.Run(fmt.Sprint(tc.args, tc.pgEnv), func(t *testing.T) {
			t.Setenv("PGSSLMODE", tc.pgEnv)
			c, err := Parse(append([]string{"-h", "h", "--pg-sslrootcert", caFile}, tc.args...), env())
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.PG.ReplicationConfig()
			if tc.refused != (err != nil) {
				t.Fatalf("ReplicationConfig = %v, want refused %v", err, tc.refused)
			}
			if err != nil && (!strings.Contains(err.Error(), "--pg-sslmode verify-full") || !strings.Contains(err.Error(), "--pg-sslrootcert")) {
				t.Fatalf("error %q does not name both flags", err)
			}
		})
	}
}

func TestExplainTLS(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("connect to Postgres: tls error: %w", err) }
	unknown := wrap(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}})
	if got := ExplainTLS(unknown).Error(); !strings.Contains(got, "--pg-sslrootcert") || !strings.Contains(got, "failed verification") {
		t.Errorf("unknown authority: %q", got)
	}
	if !errors.Is(ExplainTLS(unknown), unknown) {
		t.Error("ExplainTLS does not wrap the error")
	}
	host := wrap(x509.HostnameError{Certificate: &x509.Certificate{}, Host: "db"})
	if got := ExplainTLS(host).Error(); !strings.Contains(got, "host name") || !strings.Contains(got, "verify-ca") {
		t.Errorf("host name: %q", got)
	}
	other := errors.New("connection refused")
	if ExplainTLS(other) != other || ExplainTLS(nil) != nil {
		t.Error("ExplainTLS changed an error that is not about TLS")
	}
}
