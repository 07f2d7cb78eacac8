// Package config turns pg2kinesis' command line and PG2KINESIS_* environment
// into a validated Config. Every error it returns is a usage error: the
// command exits with status 2 and the message names the flag to fix.
package config

import (
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/format"
	"github.com/pg2kinesis/pg2kinesis/internal/route"
	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/snapshot"
)

// Config is everything a run of pg2kinesis needs, after validation.
type Config struct {
	PG PG

	SlotName     string
	Plugin       decode.Plugin
	CreateSlot   bool
	RecreateSlot bool // wins over CreateSlot when both are given
	SlotFailover bool // a failover slot (PostgreSQL 17+)

	// pgoutput: the publication, whether a new one covers only the tables
	// that --table-pat matches at start, and streaming of large
	// in-progress transactions (spilled under SpoolDir).
	Publication            string
	PublicationFromPattern bool
	Streaming              bool
	SpoolDir               string

	// StreamName is the stream's name, the ARN's name part with
	// StreamARN, which then addresses the stream in every call.
	StreamName string
	// Router sends tables to streams of their own (--stream-name with
	// placeholders, --route); nil: every table goes to StreamName.
	Router          *route.Router
	StreamARN       string
	StreamMode      sink.StreamMode // of a stream made by CreateStream
	Formatter       format.Name
	TablePat        *regexp.Regexp // nil: every table
	FullChange      bool
	Operations      []string // empty: all operations, a snapshot's read too
	PartitionKey    format.PartitionKey
	Aggregate       bool
	CreateStream    bool
	ShardCount      int
	FlushInterval   time.Duration
	ShardRateLimit  bool // keep each shard within Kinesis' write limits (kinesis.Config.NoShardLimit when false)
	Oversize        sink.Oversize
	MaxBackoff      time.Duration
	AWSRegion       string
	KinesisRegion   string // of the Kinesis calls: the ARN's with StreamARN, else AWSRegion
	KinesisEndpoint string
	Sink            sink.Kind

	StatusInterval    time.Duration
	PKRefreshInterval time.Duration
	PKCheckInterval   time.Duration
	ShutdownTimeout   time.Duration

	LogFormat string     // text or json
	LogLevel  slog.Level // parsed from --log-level

	MetricsAddr       string        // host:port of /metrics, /healthz, /readyz; "" for none
	StallTimeout      time.Duration // /readyz fails after this long without progress
	HeartbeatInterval time.Duration // 0: no heartbeat
	HeartbeatDSN      string        // where the heartbeat writes when the slot is on a standby; "": the slot's server
	LagInterval       time.Duration // period of the lag-in-bytes sample

	// Snapshots (package snapshot): the initial one, and how they are
	// read; the state table is where their progress and requests live.
	Snapshot          snapshot.Mode
	SnapshotChunkRows int
	SnapshotWorkers   int
	SnapshotTable     catalog.Name

	ConfigFile  string // the file the settings were read from, if any
	ShowVersion bool
}

// UsageError is bad command-line or environment input.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// The accepted values of the enumerated flags, in the order --help shows.
var (
	Operations = []string{"all", "insert", "update", "delete", "truncate", "read"}
	LogFormats = []string{"text", "json"}
	LogLevels  = []string{"debug", "info", "warn", "error"}
)

// Postgres restricts slot names to these characters; checking here gives a
// clear message instead of a server syntax error.
var slotNameRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// streamNameRE is Kinesis' rule for a stream name. Checked here, a typo
// is a usage error before any AWS call, not a ValidationException from
// the first one.
var streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// CheckStreamName is the --stream-name check, shared with the tail
// subcommand. It takes names, not ARNs: an ARN is --stream-arn.
func CheckStreamName(name string) error {
	if !streamNameRE.MatchString(name) {
		hint := ""
		if strings.HasPrefix(name, "arn:") {
			hint = " (an ARN goes in --stream-arn)"
		}
		return usagef("invalid --stream-name %q (%s): a Kinesis stream name is 1 to 128 letters, digits, underscores, hyphens or periods%s", name, EnvName("stream-name"), hint)
	}
	return nil
}

func oneOf[T ~string](flag string, value T, allowed []T) error {
	if slices.Contains(allowed, value) {
		return nil
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return usagef("invalid value %q for --%s: choose one of %s", value, flag, strings.Join(names, ", "))
}

// validate checks the values that parsing alone cannot, and normalises them.
func (c *Config) validate(raw rawValues) error {
	raw.logLevel = strings.ToLower(raw.logLevel)
	if err := c.PG.validate(); err != nil {
		return err
	}
	p, err := decode.ParsePlugin(raw.plugin)
	if err != nil {
		return usagef("--pg-slot-output-plugin: %v", err)
	}
	c.Plugin = p
	if p != decode.PGOutput && c.PublicationFromPattern {
		return usagef("--publication-tables-from-pattern applies to --pg-slot-output-plugin pgoutput only")
	}
	if c.PublicationFromPattern && raw.tablePat == "" {
		return usagef("--publication-tables-from-pattern needs --table-pat to pick the tables")
	}
	if c.Publication == "" {
		return usagef("--publication must not be empty")
	}
	if !slotNameRE.MatchString(c.SlotName) {
		return usagef("invalid --pg-slot-name %q: use 1 to 63 lower-case letters, digits or underscores", c.SlotName)
	}
	if err := c.validateStream(raw); err != nil {
		return err
	}
	for _, err := range []error{
		oneOf("message-formatter", c.Formatter, format.Names),
		oneOf("partition-key", c.PartitionKey, format.PartitionKeys),
		oneOf("oversize", c.Oversize, sink.OversizePolicies),
		oneOf("sink", c.Sink, sink.Kinds),
		oneOf("log-format", c.LogFormat, LogFormats),
		oneOf("log-level", raw.logLevel, LogLevels),
	} {
		if err != nil {
			return err
		}
	}
	// Cannot fail: the check above admits only the four names --help lists
	// (slog alone would also take "INFO+2", no help to an operator).
	_ = c.LogLevel.UnmarshalText([]byte(raw.logLevel))
	if c.FullChange && c.Formatter == format.CSV {
		return usagef("--full-change needs a formatter that can carry the row: use -f CSVPayload or -f JSON, not CSV")
	}
	if raw.tablePat != "" {
		re, err := regexp.Compile(raw.tablePat)
		if err != nil {
			return usagef("invalid --table-pat %q: %v", raw.tablePat, err)
		}
		c.TablePat = re
	}
	ops, err := normaliseOperations(raw.operations)
	if err != nil {
		return err
	}
	c.Operations = ops
	if err := c.validateObservability(); err != nil {
		return err
	}
	if err := c.validateSnapshot(raw); err != nil {
		return err
	}
	if c.PKCheckInterval < 0 {
		return usagef("invalid --pk-check-interval %s: must be 0 (no checks) or more", c.PKCheckInterval)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"flush-interval", c.FlushInterval},
		{"max-backoff", c.MaxBackoff},
		{"status-interval", c.StatusInterval},
		{"pk-refresh-interval", c.PKRefreshInterval},
		{"shutdown-timeout", c.ShutdownTimeout},
		{"stall-timeout", c.StallTimeout},
		{"lag-interval", c.LagInterval},
	} {
		if d.v <= 0 {
			return usagef("invalid --%s %s: must be greater than 0", d.flag, d.v)
		}
	}
	return nil
}

// validateSnapshot checks the --snapshot flags.
func (c *Config) validateSnapshot(raw rawValues) error {
	if err := oneOf("snapshot", c.Snapshot, snapshot.Modes); err != nil {
		return err
	}
	if c.SnapshotChunkRows < 1 || c.SnapshotChunkRows > 1_000_000 {
		return usagef("invalid --snapshot-chunk-rows %d: must be 1 to 1000000 (memory holds a chunk per worker)", c.SnapshotChunkRows)
	}
	if c.SnapshotWorkers < 1 || c.SnapshotWorkers > 64 {
		return usagef("invalid --snapshot-workers %d: must be 1 to 64 (each reads on a connection of its own)", c.SnapshotWorkers)
	}
	t, err := snapshot.ParseStateTable(raw.snapshotTable)
	if err != nil {
		return usagef("%v", err)
	}
	c.SnapshotTable = t
	return nil
}

// validateObservability checks the metrics address and the heartbeat.
func (c *Config) validateObservability() error {
	if c.MetricsAddr != "" {
		_, port, err := net.SplitHostPort(c.MetricsAddr)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			return usagef("invalid --metrics-addr %q: want host:port, such as 127.0.0.1:9187 or :9187, or empty to turn metrics off", c.MetricsAddr)
		}
	}
	// Each heartbeat writes WAL; more than ten a second is a typo, not a need.
	if c.HeartbeatInterval < 0 || (c.HeartbeatInterval > 0 && c.HeartbeatInterval < 100*time.Millisecond) {
		return usagef("invalid --heartbeat-interval %s: must be 0 (off) or at least 100ms", c.HeartbeatInterval)
	}
	return nil
}

// normaliseOperations accepts repeated flags and comma- or space-separated
// lists (the form an environment variable takes). "all", alone or among
// others, means every operation and is returned as an empty list.
func normaliseOperations(values []string) ([]string, error) {
	var ops []string
	all := len(values) == 0
	for _, v := range values {
		for _, op := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			op = strings.ToLower(op)
			if err := oneOf("operations", op, Operations); err != nil {
				return nil, err
			}
			if op == "all" {
				all = true
			} else if !slices.Contains(ops, op) {
				ops = append(ops, op)
			}
		}
	}
	if all {
		return nil, nil
	}
	return ops, nil
}
