package config

import (
	"strings"
	"testing"
)

func TestConnectionSettings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     []string
		host    string
		port    uint16
		db      string
		user    string
		pgEnv   map[string]string // libpq variables for the test
		tlsNone bool
	}{
		{name: "dsn only", args: []string{"--pg-dsn", "host=10.0.0.9 port=6000 dbname=shop user=cdc sslmode=disable"},
			host: "10.0.0.9", port: 6000, db: "shop", user: "cdc", tlsNone: true},
		{name: "flags override dsn", args: []string{"--pg-dsn", "host=a port=6000 dbname=shop user=cdc", "-h", "b", "-d", "other"},
			host: "b", port: 6000, db: "other", user: "cdc"},
		{name: "flags override url", args: []string{"--pg-dsn", "postgres://cdc@a:6000/shop?sslmode=disable", "-p", "7000", "-u", "bob"},
			host: "a", port: 7000, db: "shop", user: "bob", tlsNone: true},
		{name: "libpq env honoured when flags not given",
			pgEnv: map[string]string{"PGHOST": "envhost", "PGPORT": "6543", "PGDATABASE": "envdb", "PGUSER": "envuser"},
			host:  "envhost", port: 6543, db: "envdb", user: "envuser"},
		{name: "flags beat libpq env", args: []string{"-h", "flaghost"},
			pgEnv: map[string]string{"PGHOST": "envhost", "PGPORT": "6543"},
			host:  "flaghost", port: 6543},
		{name: "PG2KINESIS_ env counts as given", env: []string{"PG2KINESIS_PG_HOST", "p2khost"},
			pgEnv: map[string]string{"PGHOST": "envhost"}, host: "p2khost", port: 5432},
		{name: "sslmode flag", args: []string{"-h", "x", "--pg-sslmode", "disable"}, host: "x", port: 5432, tlsNone: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGSSLMODE", "PGSERVICE"} {
				t.Setenv(k, tc.pgEnv[k])
			}
			c, err := Parse(tc.args, env(tc.env...))
			if err != nil {
				t.Fatal(err)
			}
			pc, err := c.PG.ReplicationConfig()
			if err != nil {
				t.Fatal(err)
			}
			if pc.Host != tc.host || pc.Port != tc.port {
				t.Errorf("host:port = %s:%d, want %s:%d", pc.Host, pc.Port, tc.host, tc.port)
			}
			if tc.db != "" && pc.Database != tc.db {
				t.Errorf("database = %q, want %q", pc.Database, tc.db)
			}
			if tc.user != "" && pc.User != tc.user {
				t.Errorf("user = %q, want %q", pc.User, tc.user)
			}
			if got := pc.RuntimeParams["replication"]; got != "database" {
				t.Errorf("replication = %q, want database", got)
			}
			if tc.tlsNone && pc.TLSConfig != nil {
				t.Errorf("TLS configured, want sslmode=disable")
			}
		})
	}
}

// A DSN that does not parse gets a message that names --pg-dsn and the
// mistake, and quotes no part of the DSN: the part could be a password.
func TestBadDSNDoesNotLeakPassword(t *testing.T) {
	for _, tc := range []struct{ dsn, secret, want string }{
		{"host=a password=s3cret port=notanumber", "s3cret", "port in --pg-dsn"},
		{"host=a password=s3cret port=70000", "s3cret", "not a number from 1 to 65535"},
		{"host=a password=abc defsecret", "defsecret", `a word without "="`},
		{"host=a password='s3cret", "s3cret", "invalid keyword/value"},
		{"postgres://me:s3cret@a:notaport/db", "s3cret", "--pg-dsn"},
	} {
		t.Run(tc.dsn, func(t *testing.T) {
			c, err := Parse([]string{"--pg-dsn", tc.dsn}, env())
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.PG.ReplicationConfig()
			if err == nil {
				t.Fatal("want an error")
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("error leaks %q: %v", tc.secret, err)
			}
			for _, want := range []string{"--pg-dsn", tc.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestWithSettingsQuotes(t *testing.T) {
	got := withSettings("host=a", map[string]string{"dbname": `it's a \ db`})
	if want := `host=a dbname='it\'s a \\ db'`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
