package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
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
// ("tls error: x509: ..."), which does not name our flags.
func ExplainTLS(err error) error {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &hostname):
		return fmt.Errorf("the Postgres server's TLS certificate does not match the host name (sslmode verify-full): connect with a name the certificate lists, or use --pg-sslmode verify-ca: %w", err)
	case errors.As(err, &unknown), errors.As(err, &invalid), errors.As(err, &verify):
		return fmt.Errorf("the Postgres server's TLS certificate failed verification: set --pg-sslrootcert to the CA file that signed it: %w", err)
	}
	return err
}
