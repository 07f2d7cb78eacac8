// Package route maps a table to the Kinesis stream its changes go to: one
// stream for all (--stream-name NAME, the original's behaviour), a stream
// per table (--stream-name 'cdc.{schema}.{table}'), or a list of rules
// (--route 'REGEX=STREAM', first match wins) with --stream-name for the
// tables no rule finds.
package route

import (
	"fmt"
	"regexp"
	"strings"
)

// MaxStreamName is the longest Kinesis stream name.
const MaxStreamName = 128

// Router picks a table's stream. It is safe for concurrent use.
type Router struct {
	rules []rule
	def   template
}

type rule struct {
	re *regexp.Regexp
	to template
}

// New builds the router of --stream-name def and the --route rules, each
// "REGEX=STREAM". The error names the flag and what is wrong.
func New(def string, routes []string) (*Router, error) {
	d, err := parseTemplate(def)
	if err != nil {
		return nil, fmt.Errorf("--stream-name %q: %w", def, err)
	}
	r := &Router{def: d}
	for _, spec := range routes {
		// The stream follows the last '=': a stream name has none, a
		// regular expression may ((?P<x>=)).
		i := strings.LastIndexByte(spec, '=')
		if i <= 0 || i == len(spec)-1 {
			return nil, fmt.Errorf("--route %q: want REGEX=STREAM, for example '^public\\.orders$=orders'", spec)
		}
		re, err := regexp.Compile(spec[:i])
		if err != nil {
			return nil, fmt.Errorf("--route %q: %w", spec, err)
		}
		to, err := parseTemplate(spec[i+1:])
		if err != nil {
			return nil, fmt.Errorf("--route %q: %w", spec, err)
		}
		r.rules = append(r.rules, rule{re: re, to: to})
	}
	return r, nil
}

// Single says whether every table goes to one stream, the default's.
func (r *Router) Single() bool { return len(r.rules) == 0 && r.def.fixed() }

// Default is --stream-name as given (a template when it has placeholders).
func (r *Router) Default() string { return r.def.raw }

// Fixed lists the streams named without placeholders, the default first
// when it is one: they can be checked before replication starts.
func (r *Router) Fixed() []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range append([]template{r.def}, r.ruleTemplates()...) {
		if t.fixed() && !seen[t.raw] {
			seen[t.raw] = true
			out = append(out, t.raw)
		}
	}
	return out
}

func (r *Router) ruleTemplates() []template {
	ts := make([]template, len(r.rules))
	for i, ru := range r.rules {
		ts[i] = ru.to
	}
	return ts
}

// Stream is the stream of the table schema.name. The rules are matched
// against "schema.name" unquoted, as --table-pat is (a search: anchor
// with ^ and $ for a whole match). A placeholder's value keeps only the
// characters a stream name may have: any other becomes '_'.
func (r *Router) Stream(schema, name string) (string, error) {
	to := r.def
	for _, ru := range r.rules {
		if ru.re.MatchString(schema + "." + name) {
			to = ru.to
			break
		}
	}
	s := to.expand(schema, name)
	if s == "" {
		return "", fmt.Errorf("table %s.%s maps to an empty stream name: route it with --route", schema, name)
	}
	if len(s) > MaxStreamName {
		return "", fmt.Errorf("table %s.%s maps to stream %q, which is over %d characters: route it to a shorter name with --route", schema, name, s, MaxStreamName)
	}
	return s, nil
}
