package config

import (
	"regexp"
	"sort"
	"strings"
)

// reservedEnv are the PG2KINESIS_* variables that are not settings and
// must not stop a run: the prefixes the test suite, scripts/services.sh,
// scripts/demo.sh and bench/run.sh read (they run pg2kinesis in the same
// environment), and the service links Kubernetes adds for a Service named
// pg2kinesis or pg2kinesis-<anything> (PG2KINESIS_SERVICE_HOST,
// PG2KINESIS_PORT_9187_TCP_ADDR, ...), which would otherwise stop every pod
// in a namespace that has one.
var (
	reservedEnvPrefixes = []string{"PG2KINESIS_TEST_", "PG2KINESIS_SERVICES_", "PG2KINESIS_DEMO_", "PG2KINESIS_BENCH_"}
	serviceLinkEnv      = regexp.MustCompile(`^PG2KINESIS_(?:[A-Z0-9_]+_)?(?:SERVICE_HOST|SERVICE_PORT(?:_[A-Z0-9_]+)?|PORT(?:_[0-9]+_(?:TCP|UDP|SCTP)(?:_(?:PROTO|PORT|ADDR))?)?)$`)
)

// CheckEnviron rejects a PG2KINESIS_* variable of environ (os.Environ's
// "NAME=value" form) that names no flag: a misspelt variable silently
// ignored is a setting silently lost, as with an unknown key of the config
// file. Parse cannot do it, as getenv cannot list the variables.
func CheckEnviron(environ []string) error {
	known := map[string]bool{}
	c, raw := defaults()
	for _, s := range specs(&c, &raw) {
		known[EnvName(s.name)] = true
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || known[name] || reservedEnv(name) {
			continue
		}
		unknown = append(unknown, name)
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	name := unknown[0]
	fix := "a PG2KINESIS_ variable must name a flag, such as PG2KINESIS_PG_SLOT_NAME for --pg-slot-name (see --help): rename or unset it"
	if s := closest(name, known); s != "" {
		fix = "did you mean " + s + "? (a PG2KINESIS_ variable must name a flag: rename or unset it)"
	}
	more := ""
	if len(unknown) > 1 {
		more = " (and " + strings.Join(unknown[1:], ", ") + ")"
	}
	return usagef("unknown environment variable %s%s: %s", name, more, fix)
}

func reservedEnv(name string) bool {
	for _, p := range reservedEnvPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return serviceLinkEnv.MatchString(name)
}

// closest is the known name nearest to name, if it is near enough to be a
// typo (a few letters off, or the dashes of the flag kept).
func closest(name string, known map[string]bool) string {
	name = strings.ReplaceAll(name, "-", "_")
	best, bestDist := "", 4
	for k := range known {
		if d := editDistance(name, k); d < bestDist || d == bestDist && k < best {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is Levenshtein's, over bytes: the names are ASCII.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
