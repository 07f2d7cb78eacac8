package config

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/filter"
	"github.com/pg2kinesis/pg2kinesis/internal/format"
	"github.com/pg2kinesis/pg2kinesis/internal/sink"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaultsAreTheOriginals(t *testing.T) {
	c, err := Parse(nil, env())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"PG.Port": "5432", "PG.SSLMode": "prefer", "PG.Host": "", "SlotName": "pg2kinesis",
		"Plugin": decode.TestDecoding, "StreamName": "pg2kinesis", "Formatter": format.CSVPayload,
		"FullChange": false, "CreateSlot": false, "RecreateSlot": false, "Operations": []string(nil),
		"PartitionKey": format.ByXID, "Aggregate": true, "ShardCount": 1, "FlushInterval": 250 * time.Millisecond,
		"ShardRateLimit": true, "Oversize": sink.OversizeFail, "MaxBackoff": 30 * time.Second, "StatusInterval": 10 * time.Second,
		"PKRefreshInterval": time.Hour, "ShutdownTimeout": 30 * time.Second, "Sink": sink.Kinesis,
	}
	got := map[string]any{
		"PG.Port": c.PG.Port, "PG.SSLMode": c.PG.SSLMode, "PG.Host": c.PG.Host, "SlotName": c.SlotName,
		"Plugin": c.Plugin, "StreamName": c.StreamName, "Formatter": c.Formatter,
		"FullChange": c.FullChange, "CreateSlot": c.CreateSlot, "RecreateSlot": c.RecreateSlot, "Operations": c.Operations,
		"PartitionKey": c.PartitionKey, "Aggregate": c.Aggregate, "ShardCount": c.ShardCount, "FlushInterval": c.FlushInterval,
		"ShardRateLimit": c.ShardRateLimit, "Oversize": c.Oversize, "MaxBackoff": c.MaxBackoff, "StatusInterval": c.StatusInterval,
		"PKRefreshInterval": c.PKRefreshInterval, "ShutdownTimeout": c.ShutdownTimeout, "Sink": c.Sink,
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s = %#v, want %#v", k, got[k], w)
		}
	}
	if c.TablePat != nil {
		t.Errorf("TablePat = %v, want nil", c.TablePat)
	}
}

func TestFlagsEnvAndShortForms(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		env   []string
		check func(*Config) bool
	}{
		{"short forms", []string{"-d", "shop", "-h", "db.local", "-p", "6543", "-u", "cdc", "-s", "slot1", "-k", "stream1", "-f", "CSV"},
			nil, func(c *Config) bool {
				return c.PG.DBName == "shop" && c.PG.Host == "db.local" && c.PG.Port == "6543" && c.PG.User == "cdc" &&
					c.SlotName == "slot1" && c.StreamName == "stream1" && c.Formatter == "CSV"
			}},
		{"long forms with =", []string{"--pg-dbname=shop", "--pg-slot-output-plugin=wal2json", "--full-change", "--no-aggregate"},
			nil, func(c *Config) bool {
				return c.PG.DBName == "shop" && c.Plugin == decode.Wal2JSON && c.FullChange && !c.Aggregate
			}},
		{"env", nil, []string{"PG2KINESIS_PG_SLOT_NAME", "from_env", "PG2KINESIS_FULL_CHANGE", "true", "PG2KINESIS_FLUSH_INTERVAL", "1s"},
			func(c *Config) bool {
				return c.SlotName == "from_env" && c.FullChange && c.FlushInterval == time.Second
			}},
		{"flag wins over env", []string{"-s", "from_flag"}, []string{"PG2KINESIS_PG_SLOT_NAME", "from_env"},
			func(c *Config) bool { return c.SlotName == "from_flag" }},
		{"operations repeated", []string{"--operations", "insert", "--operations", "DELETE"}, nil,
			func(c *Config) bool { return reflect.DeepEqual(c.Operations, []string{"insert", "delete"}) }},
		{"operations from env list", nil, []string{"PG2KINESIS_OPERATIONS", "update, truncate"},
			func(c *Config) bool { return reflect.DeepEqual(c.Operations, []string{"update", "truncate"}) }},
		{"all means every operation", []string{"--operations", "insert", "--operations", "all"}, nil,
			func(c *Config) bool { return c.Operations == nil }},
		{"read: a snapshot's rows", []string{"--operations", "READ,insert"}, nil,
			func(c *Config) bool { return reflect.DeepEqual(c.Operations, []string{"read", "insert"}) }},
		{"read from env list", nil, []string{"PG2KINESIS_OPERATIONS", "read update"},
			func(c *Config) bool { return reflect.DeepEqual(c.Operations, []string{"read", "update"}) }},
		{"all with read is every operation", []string{"--operations", "read,all"}, nil,
			func(c *Config) bool { return c.Operations == nil }},
		{"create and recreate: both kept, recreate wins in the source", []string{"--create-slot", "--recreate-slot"}, nil,
			func(c *Config) bool { return c.CreateSlot && c.RecreateSlot }},
		{"table pattern compiles", []string{"--table-pat", `^public\.(a|b)$`}, nil,
			func(c *Config) bool { return c.TablePat.MatchString("public.a") && !c.TablePat.MatchString("public.c") }},
		{"log settings", []string{"--log-format", "json", "--log-level", "WARN"}, nil,
			func(c *Config) bool { return c.LogFormat == "json" && c.LogLevel == slog.LevelWarn }},
		{"log defaults", nil, nil,
			func(c *Config) bool { return c.LogFormat == "text" && c.LogLevel == slog.LevelInfo }},
		{"full change with CSVPayload", []string{"-f", "CSVPayload", "--full-change"}, nil,
			func(c *Config) bool { return c.Formatter == "CSVPayload" && c.FullChange }},
		{"JSON", []string{"-f", "JSON", "--pg-slot-output-plugin", "wal2json"}, nil,
			func(c *Config) bool { return c.Formatter == "JSON" && !c.FullChange && c.Plugin == decode.Wal2JSON }},
		{"JSON with full change (tables without a key too)", []string{"--message-formatter=JSON", "--full-change"}, nil,
			func(c *Config) bool { return c.Formatter == "JSON" && c.FullChange }},
		{"observability defaults", nil, nil,
			func(c *Config) bool {
				return c.MetricsAddr == "127.0.0.1:9187" && c.StallTimeout == time.Minute && c.HeartbeatInterval == 0
			}},
		{"observability settings", []string{"--metrics-addr", ":9999", "--stall-timeout", "2m", "--heartbeat-interval", "30s"}, nil,
			func(c *Config) bool {
				return c.MetricsAddr == ":9999" && c.StallTimeout == 2*time.Minute && c.HeartbeatInterval == 30*time.Second
			}},
		{"metrics off", nil, []string{"PG2KINESIS_METRICS_ADDR", ""},
			func(c *Config) bool { return c.MetricsAddr == "" }},
		{"a port per host", []string{"-h", "a,b", "-p", "5432,5433"}, nil,
			func(c *Config) bool { return c.PG.Port == "5432,5433" }},
		{"longest stream name", []string{"-k", strings.Repeat("s", 127) + "."}, nil,
			func(c *Config) bool { return len(c.StreamName) == 128 }},
		{"stream name of every kind of character", []string{"-k", "Orders_v2.cdc-eu"}, nil,
			func(c *Config) bool { return c.StreamName == "Orders_v2.cdc-eu" }},
		{"ipv6 metrics address", []string{"--metrics-addr", "[::1]:9187"}, nil,
			func(c *Config) bool { return c.MetricsAddr == "[::1]:9187" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.args, env(tc.env...))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tc.check(c) {
				t.Fatalf("unexpected config: %+v", c)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want []string // all must appear in the message
	}{
		{"unknown plugin", []string{"--pg-slot-output-plugin", "decoderbufs"}, nil, []string{`"decoderbufs"`, "test_decoding", "wal2json"}},
		{"publication tables need pgoutput", []string{"--publication-tables-from-pattern", "--table-pat", "x"}, nil, []string{"--publication-tables-from-pattern", "pgoutput only"}},
		{"publication tables need a pattern", []string{"--pg-slot-output-plugin", "pgoutput", "--publication-tables-from-pattern"}, nil, []string{"needs --table-pat"}},
		{"empty publication", []string{"--pg-slot-output-plugin", "pgoutput", "--publication", ""}, nil, []string{"--publication must not be empty"}},
		{"unknown formatter", []string{"-f", "XML"}, nil, []string{`"XML"`, "--message-formatter", "CSVPayload"}},
		{"unknown operation", []string{"--operations", "upsert"}, nil, []string{`"upsert"`, "--operations", "all, insert, update, delete, truncate, read"}},
		{"snapshot is not an operation", []string{"--operations", "insert,snapshot"}, nil, []string{`"snapshot"`, "--operations", "read"}},
		{"full change with CSV", []string{"-f", "CSV", "--full-change"}, nil, []string{"--full-change", "CSV"}},
		{"bad regex", []string{"--table-pat", "public.(x"}, nil, []string{"--table-pat", `"public.(x"`}},
		{"unknown flag", []string{"--bogus"}, nil, []string{"bogus"}},
		{"bad duration", []string{"--flush-interval", "soon"}, nil, []string{"flush-interval", "duration"}},
		{"zero interval", []string{"--status-interval", "0s"}, nil, []string{"--status-interval", "greater than 0"}},
		{"bad env bool", nil, []string{"PG2KINESIS_CREATE_SLOT", "maybe"}, []string{"PG2KINESIS_CREATE_SLOT", `"maybe"`}},
		{"bad slot name", []string{"-s", "My-Slot"}, nil, []string{`"My-Slot"`, "--pg-slot-name"}},
		{"bad partition key", []string{"--partition-key", "row"}, nil, []string{"--partition-key", "pk"}},
		{"bad oversize", []string{"--oversize", "truncate"}, nil, []string{"--oversize", "skip"}},
		{"bad shard count", []string{"--shard-count", "0"}, nil, []string{"--shard-count"}},
		{"positional argument", []string{"extra"}, nil, []string{`"extra"`}},
		{"bad log level", []string{"--log-level", "verbose"}, nil, []string{`"verbose"`, "--log-level", "debug, info, warn, error"}},
		{"bad log format", nil, []string{"PG2KINESIS_LOG_FORMAT", "xml"}, []string{`"xml"`, "--log-format", "text, json"}},
		{"metrics address without port", []string{"--metrics-addr", "localhost"}, nil, []string{`--metrics-addr "localhost"`, "host:port"}},
		{"metrics port not a number", []string{"--metrics-addr", "localhost:abc"}, nil, []string{`--metrics-addr "localhost:abc"`}},
		{"negative heartbeat", []string{"--heartbeat-interval", "-1s"}, nil, []string{"--heartbeat-interval -1s", "0 (off)"}},
		{"heartbeat under a second", []string{"--heartbeat-interval", "10ms"}, nil, []string{"--heartbeat-interval 10ms", "at least 100ms"}},
		{"unquoted DSN", []string{"--pg-dsn", "host=h", "password=s3cret"}, nil, []string{"key=value", "quote the whole --pg-dsn value"}},
		{"zero stall timeout", []string{"--stall-timeout", "0s"}, nil, []string{"--stall-timeout", "greater than 0"}},
		// The port is checked where it is read, so that its message names
		// the setting rather than the whole connection string.
		{"port not a number", []string{"-p", "notaport"}, nil, []string{`"notaport"`, "-p (--pg-port)", "1 to 65535"}},
		{"port too large", []string{"--pg-port", "70000"}, nil, []string{`"70000"`, "for --pg-port:", "1 to 65535"}},
		{"port zero", []string{"--pg-port=0"}, nil, []string{`"0"`, "--pg-port", "1 to 65535"}},
		{"env port not a number", nil, []string{"PG2KINESIS_PG_PORT", "abc"}, []string{`"abc"`, "PG2KINESIS_PG_PORT", "1 to 65535"}},
		{"one of the ports bad", []string{"-h", "a,b", "-p", "5432,x"}, nil, []string{`"5432,x"`, "comma-separated"}},
		// Kinesis' rules for a stream name, before any AWS call.
		{"empty stream name", []string{"--stream-name", ""}, nil, []string{`--stream-name ""`, "PG2KINESIS_STREAM_NAME", "1 to 128"}},
		{"stream name too long", []string{"-k", strings.Repeat("s", 129)}, nil, []string{"--stream-name", "1 to 128"}},
		{"stream name with a space", nil, []string{"PG2KINESIS_STREAM_NAME", "bad name!"}, []string{`--stream-name "bad name!"`, "PG2KINESIS_STREAM_NAME", "letters, digits"}},
		{"stream ARN", []string{"-k", "arn:aws:kinesis:eu-west-1:123456789012:stream/cdc"}, nil, []string{"--stream-name", "1 to 128", "--stream-arn"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.args, env(tc.env...))
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

func TestHelp(t *testing.T) {
	if _, err := Parse([]string{"--help"}, env()); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(--help) = %v, want flag.ErrHelp", err)
	}
	// -h is the host, as in the original.
	c, err := Parse([]string{"-h", "db"}, env())
	if err != nil || c.PG.Host != "db" {
		t.Fatalf("Parse(-h db) = %+v, %v", c, err)
	}
	var buf bytes.Buffer
	Usage(&buf)
	help := buf.String()
	c0, raw := defaults()
	for _, s := range specs(&c0, &raw) {
		if !strings.Contains(help, "--"+s.name+"\n") {
			t.Errorf("--help does not list --%s", s.name)
		}
		if !strings.Contains(help, EnvName(s.name)) {
			t.Errorf("--help does not name %s", EnvName(s.name))
		}
	}
	for _, want := range []string{"-d, --pg-dbname", "-h, --pg-host", "-p, --pg-port", "-u, --pg-user", "-s, --pg-slot-name",
		"-k, --stream-name", "-f, --message-formatter", "default 5432", "default prefer", "default test_decoding",
		"default CSVPayload", "default pg2kinesis", "default 250ms", "default 10s", "default 1h0m0s", "default all", "default xid"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

// Every operation --operations accepts is one the filter knows by name (a
// name accepted here and unknown there would silently publish nothing of
// it), and the config file and --help take read as they take the others.
func TestOperationsAreTheFilters(t *testing.T) {
	want := []string{"all"}
	for _, op := range filter.Ops {
		want = append(want, op.String())
	}
	if !slices.Equal(Operations, want) {
		t.Errorf("Operations = %q, want %q", Operations, want)
	}
	c, err := Parse([]string{"--config", writeFile(t, "ops.yaml", "operations: [read, delete]\n")}, env())
	if err != nil || !slices.Equal(c.Operations, []string{"read", "delete"}) {
		t.Fatalf("operations from the file: %q, %v", c.Operations, err)
	}
	var buf bytes.Buffer
	Usage(&buf)
	if !strings.Contains(buf.String(), "truncate, read") {
		t.Errorf("--help does not list read among the operations")
	}
}
