package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/snapshot"
)

// EnvPrefix prefixes the environment variable of every flag:
// --pg-slot-name is also read from PG2KINESIS_PG_SLOT_NAME.
const EnvPrefix = "PG2KINESIS_"

// EnvName is the environment variable that sets the flag with this name.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// rawValues are the flags that validate turns into typed fields.
type rawValues struct {
	plugin     string
	tablePat   string
	operations []string
	logLevel   string
	// snapshotTable is --snapshot-table, parsed into Config.SnapshotTable.
	snapshotTable string
	// explicit are the flags given by a source, not defaulted: some
	// exclude others only when given (--stream-name and --stream-arn).
	explicit map[string]bool

	// routes are the --route rules, parsed into Config.Router.
	routes []string

	// layer counts the sources applied so far (file, environment, flags);
	// opsLayer and routesLayer are the ones that last set operations and
	// routes.
	layer, opsLayer, routesLayer int
}

// mark notes that a source gave the flag name.
func (raw *rawValues) mark(c *Config, name string) {
	c.PG.markSet(name)
	if raw.explicit == nil {
		raw.explicit = map[string]bool{}
	}
	raw.explicit[name] = true
}

// spec describes one flag: its long name, optional short name and help.
// value is bound to a field of the Config being parsed.
type spec struct {
	name, short string
	value       flag.Value
	help        string
}

// specs binds every flag to c and raw. Defaults are the values c and raw
// hold before parsing; see defaults().
func specs(c *Config, raw *rawValues) []spec {
	return []spec{
		{"pg-dbname", "d", str(&c.PG.DBName), "Database to connect to (libpq: PGDATABASE, default the user name)."},
		{"pg-host", "h", str(&c.PG.Host), "Postgres server host; empty connects over the local socket (libpq: PGHOST)."},
		{"pg-port", "p", portValue{&c.PG.Port}, "Postgres port (libpq: PGPORT)."},
		{"pg-user", "u", str(&c.PG.User), "Postgres user; needs the REPLICATION attribute (libpq: PGUSER)."},
		{"pg-sslmode", "", str(&c.PG.SSLMode), "Postgres SSL mode: disable, allow, prefer, require, verify-ca or verify-full (libpq: PGSSLMODE)."},
		{"pg-sslrootcert", "", str(&c.PG.SSLRootCert), "CA certificates (PEM) that verify the server, for --pg-sslmode verify-ca or verify-full (libpq: PGSSLROOTCERT)."},
		{"pg-sslcert", "", str(&c.PG.SSLCert), "Client certificate (PEM) for certificate authentication, with --pg-sslkey (libpq: PGSSLCERT)."},
		{"pg-sslkey", "", str(&c.PG.SSLKey), "Private key (PEM) of --pg-sslcert (libpq: PGSSLKEY)."},
		{"pg-password-file", "", str(&c.PG.PasswordFile), "File holding the Postgres password (a trailing newline is ignored); wins over the DSN, PGPASSWORD and ~/.pgpass."},
		{"pg-iam-auth", "", boolean(&c.PG.IAMAuth), "Authenticate with an RDS/Aurora IAM token, made from the AWS credentials before each connection, instead of a password."},
		{"pg-dsn", "", str(&c.PG.DSN), "libpq connection string or postgres:// URL; the --pg-* flags given explicitly override its fields."},
		{"pg-slot-name", "s", str(&c.SlotName), "Logical replication slot to stream from."},
		{"pg-slot-output-plugin", "", str(&raw.plugin), "Output plugin of the slot: test_decoding, wal2json or pgoutput."},
		{"publication", "", str(&c.Publication), "pgoutput: publication to stream; created at start if missing (FOR ALL TABLES, which needs a superuser), unless it would cover a table without a replica identity."},
		{"publication-tables-from-pattern", "", boolean(&c.PublicationFromPattern), "pgoutput: create a missing publication FOR TABLE the tables --table-pat matches at start, not FOR ALL TABLES."},
		{"pg-streaming", "", boolean(&c.Streaming), "pgoutput: have PostgreSQL 14+ stream large transactions before they commit; pg2kinesis spools them to --spool-dir until the commit."},
		{"spool-dir", "", str(&c.SpoolDir), "pgoutput: directory for streamed transactions awaiting their commit, created (0700) at start if missing; empty is $TMPDIR or /tmp."},
		{"create-slot", "", boolean(&c.CreateSlot), "Create the slot at start if it does not exist (an existing slot is reused)."},
		{"recreate-slot", "", boolean(&c.RecreateSlot), "Drop the slot at start if it exists, then create it; wins over --create-slot. Changes not yet published are lost."},
		{"pg-slot-failover", "", boolean(&c.SlotFailover), "Create the slot as a failover slot (PostgreSQL 17+), which a standby with sync_replication_slots keeps, so that it survives a promotion; an existing slot must be one, an older server is refused."},
		{"stream-name", "k", str(&c.StreamName), "Kinesis stream to publish to, in the caller's account; with {schema} and {table} in it, a stream per table (cdc.{schema}.{table}), each created at its table's first change with --create-stream."},
		{"route", "", stringList{&raw.routes, &raw.layer, &raw.routesLayer, ""}, "Send the tables whose schema.table REGEX finds (a search) to STREAM, which may hold {schema} and {table}: 'REGEX=STREAM', repeatable, the first match wins; the others go to --stream-name."},
		{"stream-arn", "", str(&c.StreamARN), "Kinesis stream to publish to, by ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME), such as a stream of another account; instead of --stream-name. Calls go to the ARN's region."},
		{"message-formatter", "f", typedStr(&c.Formatter), "Record format: CSVPayload, CSV or JSON."},
		{"table-pat", "", str(&raw.tablePat), "Publish only tables whose schema.table this regular expression finds (a search, not a full match)."},
		{"full-change", "", boolean(&c.FullChange), "With CSVPayload, publish tables without a primary key too, and every column of a changed row (JSON always does both, with \"pk\": null for a table without a key)."},
		{"operations", "", stringList{&raw.operations, &raw.layer, &raw.opsLayer, "all"}, "Operations to publish, repeatable or comma-separated: all, insert, update, delete, truncate, read (a snapshot's rows)."},
		{"partition-key", "", typedStr(&c.PartitionKey), "Kinesis partition key: xid, table, pk (schema.table plus key) or const."},
		{"aggregate", "", boolean(&c.Aggregate), "Pack records into KPL aggregates (the original's format)."},
		{"no-aggregate", "", boolValue{p: &c.Aggregate, invert: true}, "Send one plain Kinesis record per change."},
		{"create-stream", "", boolean(&c.CreateStream), "Create the Kinesis stream if it does not exist, in --stream-mode; not with --stream-arn (a stream is created in the caller's account)."},
		{"stream-mode", "", typedStr(&c.StreamMode), "Capacity mode of a stream made by --create-stream: provisioned (--shard-count shards) or on-demand (AWS splits and merges shards with the load, and the sink follows)."},
		{"shard-count", "", intValue{&c.ShardCount}, "Shards of a provisioned stream made by --create-stream; on-demand ignores it."},
		{"flush-interval", "", duration(&c.FlushInterval), "Longest a record may wait on an idle Kinesis shard before it is sent (a call in flight, the shard rate limit or retries can hold it longer). A shard with no request in flight sends at once, and what arrives while one is in flight goes out in its next call, so records wait for a round trip, not this interval; it no longer makes batches larger. With --sink stdout: the longest the output buffer waits before it is written out (it is also written out when records pause for 2 ms, and when full)."},
		{"shard-rate-limit", "", boolean(&c.ShardRateLimit), "Send each shard at most Kinesis' write limits, 1,000 records (an aggregate is one) and 1 MiB per second, so that a hot shard waits and aggregates instead of being throttled; false only for a Kinesis-protocol server without shard limits (kinesalite, LocalStack), where it would slow the sink down."},
		{"oversize", "", typedStr(&c.Oversize), "A change over the stream's maximum record size (1 MiB unless raised, up to 10 MiB): fail (stop with an error) or skip (log and count it)."},
		{"max-backoff", "", duration(&c.MaxBackoff), "Longest wait between Kinesis retries."},
		{"aws-region", "", str(&c.AWSRegion), "AWS region; empty uses the SDK's default chain (AWS_REGION, profile)."},
		{"kinesis-endpoint", "", str(&c.KinesisEndpoint), "Kinesis endpoint URL, for a local Kinesis-protocol server."},
		{"sink", "", typedStr(&c.Sink), "Where records go: kinesis, or stdout for debugging."},
		{"status-interval", "", duration(&c.StatusInterval), "Longest time between status updates to Postgres."},
		{"pk-refresh-interval", "", duration(&c.PKRefreshInterval), "Reload the key cache this often (also on SIGHUP)."},
		{"pk-check-interval", "", duration(&c.PKCheckInterval), "Check this often whether a table's key may have changed (a query of the catalog's version: about 1 ms of server time per 100 tables), and reload the key cache if so; 0 turns the checks off."},
		{"shutdown-timeout", "", duration(&c.ShutdownTimeout), "On SIGINT/SIGTERM, wait this long for in-flight records before exiting."},
		{"log-format", "", str(&c.LogFormat), "Log format on standard error: text (key=value) or json (one object per line)."},
		{"log-level", "", str(&raw.logLevel), "Least severe log level written: debug, info, warn or error."},
		{"metrics-addr", "", str(&c.MetricsAddr), "Address (host:port) serving Prometheus metrics at /metrics and health checks at /healthz and /readyz; empty turns them off."},
		{"stall-timeout", "", duration(&c.StallTimeout), "/readyz fails when records have waited this long without a Kinesis acknowledgement, or Postgres has had no status update for this long (at least two --status-interval); a replication connection silent this long (at least three --status-interval), although asked for a reply, is reopened."},
		{"lag-interval", "", duration(&c.LagInterval), "Sample the replication lag in bytes and the WAL the slot retains this often, over a normal connection."},
		{"heartbeat-interval", "", duration(&c.HeartbeatInterval), "Write a logical message (pg_logical_emit_message) this often, so that the slot advances while its database is idle; 0 is off, else at least 100ms."},
		{"heartbeat-dsn", "", str(&c.HeartbeatDSN), "libpq connection string of the primary (the slot's database) that the heartbeat writes on, when the slot is on a hot standby (PostgreSQL 16+), which cannot write; empty writes on the slot's server."},
		{"snapshot", "", typedStr(&c.Snapshot), "Publish the rows that already exist, as reads: never, initial (the tables never snapshotted for the slot, then stream) or initial_only (the same, then exit 0 once delivered). Snapshots asked for with pg2kinesis snapshot run in every mode."},
		{"snapshot-chunk-rows", "", intValue{&c.SnapshotChunkRows}, "Rows a snapshot reads per chunk at most, each chunk in a short transaction of its own; a chunk also ends once its text reaches about 6 MiB shared between the readers."},
		{"snapshot-workers", "", intValue{&c.SnapshotWorkers}, "Connections a snapshot reads on: that many tables at a time; spare ones read ranges of a table started with them."},
		{"snapshot-table", "", str(&raw.snapshotTable), "Table ([schema.]name) holding the progress of each table's snapshot and the requests for new ones; created when a snapshot first runs."},
		{"config", "", str(&c.ConfigFile), "YAML file of settings keyed by the long flag names (pg-slot-name: x); the environment and flags win over it."},
		{"version", "", boolean(&c.ShowVersion), "Print the version and exit."},
	}
}

// defaults are the original pg2kinesis' defaults, plus ours for new flags.
func defaults() (Config, rawValues) {
	return Config{
			PG:                PG{Port: "5432", SSLMode: "prefer"},
			SlotName:          "pg2kinesis",
			Publication:       "pg2kinesis",
			Streaming:         true,
			StreamName:        "pg2kinesis",
			Formatter:         "CSVPayload",
			PartitionKey:      "xid",
			Aggregate:         true,
			StreamMode:        sink.Provisioned,
			ShardCount:        1,
			FlushInterval:     250 * time.Millisecond,
			ShardRateLimit:    true,
			Oversize:          "fail",
			MaxBackoff:        30 * time.Second,
			Sink:              "kinesis",
			StatusInterval:    10 * time.Second,
			PKRefreshInterval: time.Hour,
			PKCheckInterval:   2 * time.Second,
			ShutdownTimeout:   30 * time.Second,
			LogFormat:         "text",
			MetricsAddr:       "127.0.0.1:9187",
			StallTimeout:      time.Minute,
			LagInterval:       10 * time.Second,
			Snapshot:          snapshot.Never,
			SnapshotChunkRows: snapshot.DefaultChunkRows,
			SnapshotWorkers:   snapshot.DefaultWorkers,
		}, rawValues{
			snapshotTable: "public.pg2kinesis_snapshot",
			plugin:        "test_decoding",
			logLevel:      "info",
		}
}

// Parse reads args (without the program name), the PG2KINESIS_* variables
// from getenv and the config file that --config or PG2KINESIS_CONFIG names.
// Flags win over the environment, which wins over the file, which wins over
// the defaults. It returns flag.ErrHelp for --help and a *UsageError for
// anything it rejects.
func Parse(args []string, getenv func(string) (string, bool)) (*Config, error) {
	// A first pass over the flags only finds --config (and reports bad
	// flags): the file must be applied before the environment and flags.
	scratch, scratchRaw := defaults()
	if _, err := parseFlags(args, &scratch, &scratchRaw); err != nil {
		return nil, err
	}
	path := scratch.ConfigFile
	if path == "" {
		path, _ = getenv(EnvName("config"))
	}

	c, raw := defaults()
	c.ConfigFile = path
	raw.layer++
	if path != "" {
		set, err := applyFile(path, specs(&c, &raw))
		if err != nil {
			return nil, err
		}
		for _, name := range set {
			raw.mark(&c, name)
		}
	}
	raw.layer++
	for _, s := range specs(&c, &raw) {
		if v, ok := getenv(EnvName(s.name)); ok {
			if err := s.value.Set(v); err != nil {
				return nil, usagef("invalid value %s for %s: %v", quoted(s.name, v), EnvName(s.name), err)
			}
			raw.mark(&c, s.name)
		}
	}
	raw.layer++
	fs, err := parseFlags(args, &c, &raw)
	if err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) { raw.mark(&c, longName(f.Name)) })
	if err := c.validate(raw); err != nil {
		return nil, err
	}
	return &c, nil
}

// parseFlags parses args into c and raw.
func parseFlags(args []string, c *Config, raw *rawValues) (*flag.FlagSet, error) {
	fs := flag.NewFlagSet("pg2kinesis", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for _, s := range specs(c, raw) {
		fs.Var(s.value, s.name, s.help)
		if s.short != "" {
			fs.Var(s.value, s.short, s.help)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usagef("%s (see --help)", flagNames(err.Error()))
	}
	if fs.NArg() > 0 {
		// A key=value word is most likely a piece of an unquoted --pg-dsn,
		// perhaps its password: name the mistake, never the word.
		if strings.Contains(fs.Arg(0), "=") {
			return nil, usagef("unexpected argument of the form key=value: quote the whole --pg-dsn value, as in --pg-dsn 'host=db user=me' (see --help)")
		}
		return nil, usagef("unexpected argument %q (see --help)", fs.Arg(0))
	}
	return fs, nil
}

// flagInMessage is how the flag package names the flag of a bad value.
var flagInMessage = regexp.MustCompile(`for flag -([a-z-]+):`)

// flagNames rewrites the flag package's "for flag -p:" as "for -p
// (--pg-port):", so that a bad value given by short name names the long
// one that --help, the variable and the config file go by.
func flagNames(msg string) string {
	return flagInMessage.ReplaceAllStringFunc(msg, func(m string) string {
		name := flagInMessage.FindStringSubmatch(m)[1]
		if long := longName(name); long != name {
			return fmt.Sprintf("for -%s (--%s):", name, long)
		}
		return fmt.Sprintf("for --%s:", name)
	})
}

// quoted is v in quotes for an error message, unless the setting may hold
// a password.
func quoted(name, v string) string {
	if name == "pg-dsn" {
		return "(not shown: it may hold a password)"
	}
	return strconv.Quote(v)
}

func longName(name string) string {
	switch name {
	case "d":
		return "pg-dbname"
	case "h":
		return "pg-host"
	case "p":
		return "pg-port"
	case "u":
		return "pg-user"
	case "k":
		return "stream-name"
	}
	return name
}

// Usage writes the --help text: every flag, its short form, its default
// and its environment variable.
func Usage(w io.Writer) {
	c, raw := defaults()
	fmt.Fprintf(w, `Usage: pg2kinesis [flags]

Streams the changes of a PostgreSQL database from a logical replication slot
to an AWS Kinesis stream, at least once and in commit order.

Every flag can also be set with an environment variable, shown after it,
and in the YAML file of --config under its long name. Flags win over the
environment, which wins over the file, which wins over the defaults. The
libpq variables (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE,
...) and ~/.pgpass apply as well; the --pg-* settings win over them when
given. -h is the host (as in the original pg2kinesis); help is --help only.

Flags:
`)
	for _, s := range specs(&c, &raw) {
		names := "    --" + s.name
		if s.short != "" {
			names = "-" + s.short + ", --" + s.name
		}
		def := s.value.String()
		_, isBool := s.value.(boolValue)
		switch {
		case s.name == "no-aggregate" || s.name == "version" || s.name == "config":
			def = ""
		case isBool:
			def = "default " + def
		case def == "":
			def = `default ""`
		default:
			def = "default " + def
		}
		fmt.Fprintf(w, "  %s\n      %s\n      [%s%s]\n", names, s.help, EnvName(s.name), prefixComma(def))
	}
}

func prefixComma(s string) string {
	if s == "" {
		return ""
	}
	return ", " + s
}
