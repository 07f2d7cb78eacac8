// Package decode holds the change model shared by the plugin parsers in its
// sub-packages, and the list of logical decoding output plugins we read.
package decode

import (
	"fmt"
	"strings"
)

// Plugin is a logical decoding output plugin.
type Plugin int

// The output plugins pg2kinesis reads. All three ship with, or are offered
// by, the managed Postgres services (RDS, Aurora, Cloud SQL).
const (
	TestDecoding Plugin = iota + 1
	Wal2JSON
	PGOutput
)

var pluginNames = map[Plugin]string{
	TestDecoding: "test_decoding",
	Wal2JSON:     "wal2json",
	PGOutput:     "pgoutput",
}

// Plugins lists the plugins in the order --help shows them.
var Plugins = []Plugin{TestDecoding, Wal2JSON, PGOutput}

func (p Plugin) String() string {
	if s, ok := pluginNames[p]; ok {
		return s
	}
	return fmt.Sprintf("Plugin(%d)", int(p))
}

// ParsePlugin returns the plugin with the given server-side name.
func ParsePlugin(name string) (Plugin, error) {
	for p, s := range pluginNames {
		if s == name {
			return p, nil
		}
	}
	names := make([]string, len(Plugins))
	for i, p := range Plugins {
		names[i] = p.String()
	}
	return 0, fmt.Errorf("unknown output plugin %q: choose one of %s", name, strings.Join(names, ", "))
}

// StartOptions are the START_REPLICATION plugin options our parsers rely on,
// already quoted for the replication protocol. wal2json is read in
// format-version 2 (one message per change, so a huge transaction is never
// held whole in memory) with the xid, commit time, LSNs and the primary
// key as of each change included (include-pk);
// test_decoding with the commit time. pgoutput's depend on the server and
// the publication: see the source.
func (p Plugin) StartOptions() []string {
	switch p {
	case TestDecoding:
		return []string{`"include-timestamp" '1'`}
	case Wal2JSON:
		return []string{
			`"format-version" '2'`,
			`"include-xids" '1'`,
			`"include-timestamp" '1'`,
			`"include-lsn" '1'`,
			`"include-pk" '1'`,
		}
	default:
		return nil
	}
}
