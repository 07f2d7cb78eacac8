package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// layered is one setting as each source spells it, and what Parse makes of
// it. The values differ from each other and, where the type allows, from
// the default, so the result tells which source won.
type layered struct {
	name                             string
	file                             string // YAML line(s)
	env                              [2]string
	args                             []string
	def, fromFile, fromEnv, fromFlag any
	get                              func(*Config) any
}

var layeredSettings = []layered{
	{name: "string", file: "pg-slot-name: from_file", env: [2]string{"PG2KINESIS_PG_SLOT_NAME", "from_env"},
		args: []string{"-s", "from_flag"}, def: "pg2kinesis", fromFile: "from_file", fromEnv: "from_env", fromFlag: "from_flag",
		get: func(c *Config) any { return c.SlotName }},
	{name: "bool", file: "create-slot: true", env: [2]string{"PG2KINESIS_CREATE_SLOT", "false"},
		args: []string{"--create-slot"}, def: false, fromFile: true, fromEnv: false, fromFlag: true,
		get: func(c *Config) any { return c.CreateSlot }},
	{name: "bool set by its negation", file: "aggregate: false", env: [2]string{"PG2KINESIS_AGGREGATE", "true"},
		args: []string{"--no-aggregate"}, def: true, fromFile: false, fromEnv: true, fromFlag: false,
		get: func(c *Config) any { return c.Aggregate }},
	{name: "repeatable", file: "operations: [insert, update]", env: [2]string{"PG2KINESIS_OPERATIONS", "delete"},
		args: []string{"--operations", "truncate", "--operations", "insert"},
		def:  []string(nil), fromFile: []string{"insert", "update"}, fromEnv: []string{"delete"}, fromFlag: []string{"truncate", "insert"},
		get: func(c *Config) any { return c.Operations }},
	{name: "duration", file: "flush-interval: 2s", env: [2]string{"PG2KINESIS_FLUSH_INTERVAL", "3s"},
		args: []string{"--flush-interval=4s"}, def: 250 * time.Millisecond, fromFile: 2 * time.Second, fromEnv: 3 * time.Second, fromFlag: 4 * time.Second,
		get: func(c *Config) any { return c.FlushInterval }},
	{name: "empty string (metrics off)", file: "metrics-addr: 127.0.0.1:9000", env: [2]string{"PG2KINESIS_METRICS_ADDR", ""},
		args: []string{"--metrics-addr=:9100"}, def: "127.0.0.1:9187", fromFile: "127.0.0.1:9000", fromEnv: "", fromFlag: ":9100",
		get: func(c *Config) any { return c.MetricsAddr }},
	{name: "connection field", file: "pg-host: file.db", env: [2]string{"PG2KINESIS_PG_HOST", "env.db"},
		args: []string{"-h", "flag.db"}, def: "libpq.db", fromFile: "file.db", fromEnv: "env.db", fromFlag: "flag.db",
		get: func(c *Config) any {
			pc, err := c.PG.ReplicationConfig()
			if err != nil {
				return err
			}
			return pc.Host
		}},
}

// Every combination of sources, for each kind of setting: the highest
// source given wins (flags > environment > file > defaults), and a list
// from a higher source replaces a lower one's instead of adding to it.
func TestPrecedence(t *testing.T) {
	t.Setenv("PGHOST", "libpq.db") // what a connection field falls back to
	for _, s := range layeredSettings {
		for mask := 0; mask < 8; mask++ {
			inFile, inEnv, inFlags := mask&1 != 0, mask&2 != 0, mask&4 != 0
			t.Run(fmt.Sprintf("%s/file=%v,env=%v,flags=%v", s.name, inFile, inEnv, inFlags), func(t *testing.T) {
				var args, envKV []string
				want := s.def
				if inFile {
					args = append(args, "--config", writeFile(t, "pg2kinesis.yaml", "# settings\n"+s.file+"\n"))
					want = s.fromFile
				}
				if inEnv {
					envKV = s.env[:]
					want = s.fromEnv
				}
				if inFlags {
					args = append(args, s.args...)
					want = s.fromFlag
				}
				c, err := Parse(args, env(envKV...))
				if err != nil {
					t.Fatal(err)
				}
				if got := s.get(c); !reflect.DeepEqual(got, want) {
					t.Fatalf("got %#v, want %#v", got, want)
				}
			})
		}
	}
}

func TestConfigFileFromEnvAndFlag(t *testing.T) {
	a := writeFile(t, "a.yaml", "pg-slot-name: from_a\nstream-name: stream_a\n")
	b := writeFile(t, "b.yaml", "pg-slot-name: from_b\n")
	c, err := Parse(nil, env("PG2KINESIS_CONFIG", a))
	if err != nil || c.SlotName != "from_a" || c.StreamName != "stream_a" || c.ConfigFile != a {
		t.Fatalf("PG2KINESIS_CONFIG: %+v, %v", c, err)
	}
	c, err = Parse([]string{"--config", b}, env("PG2KINESIS_CONFIG", a))
	if err != nil || c.SlotName != "from_b" || c.StreamName != "pg2kinesis" {
		t.Fatalf("--config wins over PG2KINESIS_CONFIG: %+v, %v", c, err)
	}
	// Every key of a full file is accepted, with the types YAML gives them.
	full := writeFile(t, "full.yaml", `
pg-dbname: shop
pg-port: 6432
full-change: true
shard-count: 4
operations: insert
table-pat: '^public\.'
log-format: json
log-level: debug
`)
	c, err = Parse([]string{"--config", full}, env())
	if err != nil {
		t.Fatal(err)
	}
	if c.PG.DBName != "shop" || c.PG.Port != "6432" || !c.FullChange || c.ShardCount != 4 ||
		!reflect.DeepEqual(c.Operations, []string{"insert"}) || !c.TablePat.MatchString("public.x") || c.LogFormat != "json" {
		t.Fatalf("full file: %+v", c)
	}
	if c, err := Parse([]string{"--config", writeFile(t, "empty.yaml", "# nothing yet\n")}, env()); err != nil || c.SlotName != "pg2kinesis" {
		t.Fatalf("empty file: %+v, %v", c, err)
	}
}

func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          []string
	}{
		{"unknown key", "pg-slot-name: a\npg-slot-nmae: b\n", []string{`unknown key "pg-slot-nmae"`, "line 2", "long flag names"}},
		{"short name", "s: a\n", []string{`unknown key "s"`}},
		{"dashes", "--create-slot: true\n", []string{`unknown key "--create-slot"`, "without dashes"}},
		{"nested config", "config: other.yaml\n", []string{`"config"`, "cannot name another"}},
		{"bad bool", "create-slot: yes\n", []string{"create-slot", `"yes"`, "true or false"}},
		{"bad duration", "max-backoff: 30\n", []string{"max-backoff", "duration", "line 1"}},
		{"validated as flags are", "partition-key: row\n", []string{"--partition-key", "pk"}},
		{"list for a single flag", "pg-slot-name: [a, b]\n", []string{"pg-slot-name", "single value"}},
		{"no value", "stream-name:\n", []string{"stream-name", "no value"}},
		{"duplicate", "sink: stdout\nsink: kinesis\n", []string{`"sink"`, "line 1"}},
		{"not a mapping", "- a\n- b\n", []string{"mapping"}},
		{"not YAML", "a: [\n", []string{"config file"}},
		{"DSN value not shown", "pg-dsn: [x]\n", []string{"pg-dsn", "single value"}},
		{"bad port", "pg-port: 70000\n", []string{"pg-port", `"70000"`, "1 to 65535", "line 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "bad.yaml", tc.content)
			_, err := Parse([]string{"--config", path}, env())
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("Parse = %v, want a *UsageError", err)
			}
			want := tc.want
			if tc.name != "validated as flags are" { // validation does not know where a value came from
				want = append(want, path)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	_, err := Parse([]string{"--config", "/nonexistent/pg2kinesis.yaml"}, env())
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/pg2kinesis.yaml") || !strings.Contains(err.Error(), "PG2KINESIS_CONFIG") {
		t.Fatalf("missing file: %v", err)
	}
}

// The sample shipped in etc/ is a valid file (its paths need not exist for
// this check, so they are pointed at a readable file).
func TestSampleConfig(t *testing.T) {
	data, err := os.ReadFile("../../etc/pg2kinesis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pw := writeFile(t, "pw", "secret\n")
	ca := writeFile(t, "ca.pem", "")
	sample := strings.NewReplacer("/run/secrets/pg2kinesis-password", pw, "/etc/ssl/certs/rds-global-bundle.pem", ca).Replace(string(data))
	c, err := Parse([]string{"--config", writeFile(t, "sample.yaml", sample)}, env())
	if err != nil {
		t.Fatal(err)
	}
	if c.StreamName != "shop-changes" || c.PG.Host != "db.example.com" || c.PartitionKey != "pk" || len(c.Operations) != 3 ||
		c.MetricsAddr != ":9187" || c.HeartbeatInterval != time.Minute {
		t.Fatalf("sample: %+v", c)
	}
}
