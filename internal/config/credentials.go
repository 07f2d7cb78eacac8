package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// SSLModes are libpq's, weakest first.
var SSLModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// validate checks the credential and TLS flags before anything connects,
// so that a typo in a path is a usage error naming the flag, not a
// connection failure.
func (p *PG) validate() error {
	if p.set["pg-sslmode"] {
		if err := oneOf("pg-sslmode", p.SSLMode, SSLModes); err != nil {
			return err
		}
	}
	if p.PasswordFile != "" {
		if p.IAMAuth {
			return usagef("--pg-password-file and --pg-iam-auth both set the password: choose one")
		}
		b, err := os.ReadFile(p.PasswordFile)
		if err != nil {
			return usagef("cannot read --pg-password-file: %v", err)
		}
		// Editors and `echo` end the file with a newline; the password does not.
		pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if pw == "" {
			return usagef("--pg-password-file %s is empty", p.PasswordFile)
		}
		if strings.ContainsAny(pw, "\r\n") {
			return usagef("--pg-password-file %s has more than one line: it must hold only the password", p.PasswordFile)
		}
		p.password = pw
	}
	for _, f := range []struct{ flag, path string }{
		{"pg-sslrootcert", p.SSLRootCert}, {"pg-sslcert", p.SSLCert}, {"pg-sslkey", p.SSLKey},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.ReadFile(f.path); err != nil {
			return usagef("cannot read --%s: %v", f.flag, err)
		}
	}
	if (p.SSLCert == "") != (p.SSLKey == "") {
		return usagef("--pg-sslcert and --pg-sslkey go together: give both or neither")
	}
	return nil
}

// ExplainTLS prefixes a failed verification of the server's certificate
// with what to fix. pgconn reports it deep inside a connect error
// ("tls error: x509: ..."), which does not name our flags. It also leaves
// out the TLS attempts that only hide the real cause (see
// withoutTLSFallback).
func ExplainTLS(err error) error {
	if err == nil {
		return nil
	}
	err = withoutTLSFallback(err)
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	switch {
	case strings.Contains(err.Error(), "tls error: server refused TLS connection"):
		// Left by withoutTLSFallback: no plain attempt followed.
		return fmt.Errorf("the Postgres server does not accept TLS, which the sslmode in effect (--pg-sslmode, the DSN's or PGSSLMODE) requires: turn ssl on in the server, or use --pg-sslmode prefer: %w", err)
	case errors.As(err, &hostname):
		return fmt.Errorf("the Postgres server's TLS certificate does not match the host name (sslmode verify-full): connect with a name the certificate lists, or use --pg-sslmode verify-ca: %w", err)
	case errors.As(err, &unknown), errors.As(err, &invalid), errors.As(err, &verify):
		return fmt.Errorf("the Postgres server's TLS certificate failed verification: set --pg-sslrootcert to the CA file that signed it: %w", err)
	}
	return err
}

// withoutTLSFallback leaves out of a failed connection the attempts that
// failed on TLS when another attempt failed for another reason: under the
// default sslmode=prefer, pgconn tries TLS, then plain, and joins both
// failures, so a wrong password on a server without TLS read "tls error:
// server refused TLS connection; ... password authentication failed". A
// failure that is only TLS (sslmode=require against such a server) is
// kept. Repeats of one message (a refused dial, with and without TLS) are
// said once.
func withoutTLSFallback(err error) error {
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		return err
	}
	joined, ok := ce.Unwrap().(interface{ Unwrap() []error })
	if !ok {
		return err
	}
	attempts := joined.Unwrap()
	otherCause := slices.ContainsFunc(attempts, func(a error) bool { return !isTLSAttempt(a) })
	var kept []string
	for _, a := range attempts {
		if otherCause && isTLSAttempt(a) || slices.Contains(kept, a.Error()) {
			continue
		}
		kept = append(kept, a.Error())
	}
	full, whole := err.Error(), ce.Error()
	if len(kept) == len(attempts) || !strings.Contains(full, whole) {
		return err
	}
	short := fmt.Sprintf("failed to connect to `user=%s database=%s`: %s", ce.Config.User, ce.Config.Database, strings.Join(kept, "; "))
	return &rewordedError{msg: strings.Replace(full, whole, short, 1), err: err}
}

// isTLSAttempt is an attempt of pgconn's that failed in the TLS handshake
// (its message is "host:port (host): tls error: ...").
func isTLSAttempt(a error) bool {
	inner := errors.Unwrap(a)
	return inner != nil && strings.HasPrefix(inner.Error(), "tls error: ")
}

// rewordedError is err with a shorter message; errors.Is and As still see
// the whole of err.
type rewordedError struct {
	msg string
	err error
}

func (e *rewordedError) Error() string { return e.msg }
func (e *rewordedError) Unwrap() error { return e.err }
