package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PG is how to reach Postgres. Its fields override the same settings of DSN
// only when given explicitly (flag or PG2KINESIS_* variable), so that the
// libpq variables (PGHOST, PGPORT, ...) keep working when they are not.
type PG struct {
	DSN     string
	DBName  string
	Host    string
	Port    string
	User    string
	SSLMode string

	// The TLS files go into the connection string like the fields above,
	// so that pgconn loads and checks them exactly as libpq would.
	SSLRootCert string
	SSLCert     string
	SSLKey      string

	// PasswordFile holds the password (one line); validate reads it into
	// password, which is set on the parsed configs and never put into a
	// connection string, where an error message could quote it.
	PasswordFile string
	password     string

	// IAMAuth replaces the password with an RDS IAM token made before each
	// connection (see internal/pgauth).
	IAMAuth bool

	set map[string]bool // flag names given explicitly
}

var pgFlagKeys = map[string]string{
	"pg-dbname":      "dbname",
	"pg-host":        "host",
	"pg-port":        "port",
	"pg-user":        "user",
	"pg-sslmode":     "sslmode",
	"pg-sslrootcert": "sslrootcert",
	"pg-sslcert":     "sslcert",
	"pg-sslkey":      "sslkey",
}

func (p *PG) markSet(flagName string) {
	if _, ok := pgFlagKeys[flagName]; !ok {
		return
	}
	if p.set == nil {
		p.set = map[string]bool{}
	}
	p.set[flagName] = true
}

func (p *PG) overrides() map[string]string {
	values := map[string]string{
		"pg-dbname": p.DBName, "pg-host": p.Host, "pg-port": p.Port,
		"pg-user": p.User, "pg-sslmode": p.SSLMode,
		"pg-sslrootcert": p.SSLRootCert, "pg-sslcert": p.SSLCert, "pg-sslkey": p.SSLKey,
	}
	kv := map[string]string{}
	for name, key := range pgFlagKeys {
		if p.set[name] {
			kv[key] = values[name]
		}
	}
	return kv
}

// portValue is --pg-port, checked where it is read (flag, variable or
// file) so that the message names the setting; pgconn would only say
// "invalid port" about the whole connection string. A list is libpq's form
// for several hosts (-h a,b -p 5432,5433).
type portValue struct{ p *string }

func (v portValue) String() string { return stringValue(v).String() }
func (v portValue) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(part)); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("want a port number from 1 to 65535 (or one per host, comma-separated)")
		}
	}
	*v.p = s
	return nil
}

// ConnString is DSN with the explicit --pg-* flags applied.
func (p *PG) ConnString() string {
	return withSettings(p.DSN, p.overrides())
}

// ReplicationConfig parses the connection settings for a logical
// replication connection (replication=database).
func (p *PG) ReplicationConfig() (*pgconn.Config, error) {
	kv := p.overrides()
	kv["replication"] = "database"
	cfg, err := pgconn.ParseConfig(withSettings(p.DSN, kv))
	if err != nil {
		// pgconn's message can quote the DSN, password included: keep it out.
		return nil, usagef("invalid Postgres connection settings (--pg-dsn and --pg-* flags): %s", redactParseError(err))
	}
	if err := p.checkTLS(cfg); err != nil {
		return nil, err
	}
	if p.password != "" {
		cfg.Password = p.password
	}
	return cfg, nil
}

// checkTLS refuses a CA file that the sslmode in effect (from a flag, the
// DSN or PGSSLMODE) would not use: the operator asked for verification and
// would silently not get it.
func (p *PG) checkTLS(cfg *pgconn.Config) error {
	rootCert := p.SSLRootCert
	if !p.set["pg-sslrootcert"] {
		rootCert = "" // from the DSN or PGSSLROOTCERT: libpq's rules, not ours
	}
	if rootCert == "" {
		return nil
	}
	t := cfg.TLSConfig
	if t == nil || (t.InsecureSkipVerify && t.VerifyPeerCertificate == nil) {
		return usagef("--pg-sslrootcert %s is set, but the sslmode in effect (disable, allow or prefer) does not verify the server: add --pg-sslmode verify-full (or verify-ca)", rootCert)
	}
	return nil
}

// QueryConfig parses the connection settings for a normal connection, as
// the primary-key catalog needs.
func (p *PG) QueryConfig() (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(p.ConnString())
	if err != nil {
		return nil, usagef("invalid Postgres connection settings (--pg-dsn and --pg-* flags): %s", redactParseError(err))
	}
	if err := p.checkTLS(&cfg.Config); err != nil {
		return nil, err
	}
	if p.password != "" {
		cfg.Password = p.password
	}
	return cfg, nil
}

// withSettings appends settings to a connection string. Later keywords win
// in the keyword/value form, and query parameters win over the URL's parts.
func withSettings(dsn string, kv map[string]string) string {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn // let pgconn report it
		}
		q := u.Query()
		for _, k := range keys {
			q.Set(k, kv[k])
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	var b strings.Builder
	b.WriteString(dsn)
	for _, k := range keys {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s='%s'", k, quoteValue(kv[k]))
	}
	return b.String()
}

func quoteValue(v string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v)
}

// quotedText is a Go-quoted string in an error message.
var quotedText = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// redactParseError says why a DSN does not parse without quoting any of
// it: pgconn's messages quote the text they stumbled on, which can be a
// piece of a password (an unquoted one with a space in it, say).
func redactParseError(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		msg := pe.Unwrap().Error()
		if strings.HasPrefix(msg, `missing "=" after`) {
			return `a word without "=" (quote a value that holds spaces: password='a b')`
		}
		return quotedText.ReplaceAllString(msg, `"…"`)
	}
	if errors.As(err, &pe) {
		// Without a cause, pgconn's message is fixed text after the
		// connection string ("invalid port"): keep only that text.
		msg := err.Error()
		if i := strings.LastIndex(msg, "`: "); i >= 0 {
			msg = msg[i+len("`: "):]
		}
		if msg == "invalid port" {
			// --pg-port is checked when it is read: the port came from the
			// DSN or libpq's PGPORT.
			return "the port in --pg-dsn (PG2KINESIS_PG_DSN) or PGPORT is not a number from 1 to 65535: fix it there, or give --pg-port"
		}
		if msg != err.Error() {
			return quotedText.ReplaceAllString(msg, `"…"`)
		}
	}
	return "cannot parse them (check quoting and key names)"
}
