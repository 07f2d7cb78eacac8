package config

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// HeartbeatConnConfig is --heartbeat-dsn parsed, nil when it is empty
// (the heartbeat then writes on the slot's server). It is checked here,
// at start, rather than when the flag is read: the flag parser's errors
// quote the value, and a DSN may hold a password.
func (c *Config) HeartbeatConnConfig() (*pgx.ConnConfig, error) {
	if c.HeartbeatDSN == "" {
		return nil, nil
	}
	cfg, err := pgx.ParseConfig(c.HeartbeatDSN)
	if err != nil {
		why := redactParseError(err)
		if strings.Contains(why, "--pg-dsn") { // its port advice is --pg-dsn's
			why = "its port (or PGPORT) is not a number from 1 to 65535"
		}
		return nil, usagef("invalid --heartbeat-dsn (PG2KINESIS_HEARTBEAT_DSN): %s; want the primary's libpq connection string, "+
			"naming the slot's database, such as \"host=primary dbname=app user=pg2kinesis\"", why)
	}
	return cfg, nil
}
