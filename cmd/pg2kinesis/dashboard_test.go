package main

// Tests of the Grafana dashboard etc/grafana/pg2kinesis.json: its shape
// (TestDashboardShape), and that every metric it queries is one a real
// run serves (TestDashboardMetricsLive), so a renamed metric cannot leave
// a panel silently empty.

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv/kinesisproxy"
)

const dashboardFile = "../../etc/grafana/pg2kinesis.json"

// dashPanel is what the tests read of a panel; a row holds its panels
// only while collapsed.
type dashPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"`
}

type dashboardJSON struct {
	SchemaVersion int `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Query      any    `json:"query"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashPanel `json:"panels"`
}

func loadDashboard(t *testing.T) *dashboardJSON {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboardJSON
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

// allPanels is every panel, rows and the panels of collapsed rows included.
func (d *dashboardJSON) allPanels() []dashPanel {
	var all []dashPanel
	var walk func([]dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return all
}

// exprs are the PromQL expressions of the panels' targets and of the
// variables' label_values queries (their first argument: the second is a
// label name, not a metric).
func (d *dashboardJSON) exprs() []string {
	var out []string
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`)
	for _, v := range d.Templating.List {
		if m := labelValues.FindStringSubmatch(v.Definition); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// metricNames is every metric the dashboard queries, sorted, each once.
func (d *dashboardJSON) metricNames() []string {
	var names []string
	for _, e := range d.exprs() {
		for _, s := range promSelectors(e) {
			names = append(names, s.name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// selector is a metric named in a PromQL expression, with the text
// between the braces that follow it ("" without).
type selector struct{ name, labels string }

// Words that are PromQL, not metrics. Functions need no list: they are
// followed by "(". Aggregations may be followed by "by (…)" instead.
var promWords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
	"and": true, "or": true, "unless": true, "atan2": true, "bool": true, "offset": true, "inf": true, "nan": true,
	// followed by a list of label names, skipped with it
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// promSelectors extracts the metrics of a PromQL expression: identifiers
// that are not PromQL words or functions, outside strings, braces (label
// matchers), brackets (ranges) and the label lists of by, without, on,
// ignoring, group_left and group_right. It is a scanner, not a parser: it
// trusts the expression to be valid.
func promSelectors(expr string) []selector {
	var out []selector
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
	}
	// skip returns the index after the bracket closing the one at i,
	// stepping over quoted strings.
	skip := func(i int) int {
		open, depth := expr[i], 0
		closing := map[byte]byte{'(': ')', '{': '}', '[': ']'}[open]
		for ; i < len(expr); i++ {
			switch c := expr[i]; {
			case c == '"' || c == '\'' || c == '`':
				for i++; i < len(expr) && expr[i] != c; i++ {
					if expr[i] == '\\' && c != '`' {
						i++
					}
				}
			case c == open:
				depth++
			case c == closing:
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(expr)
	}
	nextNonSpace := func(i int) int {
		for i < len(expr) && (expr[i] == ' ' || expr[i] == '\t' || expr[i] == '\n') {
			i++
		}
		return i
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			i = j + 1
		case c == '{' || c == '[':
			i = skip(i)
		case c >= '0' && c <= '9' || c == '.' || c == '$':
			// A number (0.99, 1e9, 0x1f), a duration, or a Grafana
			// variable outside brackets: none is a metric.
			for i++; i < len(expr) && (isIdent(expr[i], false) || expr[i] == '.'); i++ {
			}
		case isIdent(c, true):
			j := i
			for j < len(expr) && isIdent(expr[j], false) {
				j++
			}
			word, next := expr[i:j], nextNonSpace(j)
			i = j
			switch {
			case promWords[strings.ToLower(word)]:
				switch strings.ToLower(word) {
				case "by", "without", "on", "ignoring", "group_left", "group_right":
					if next < len(expr) && expr[next] == '(' {
						i = skip(next)
					}
				}
			case next < len(expr) && expr[next] == '(':
				// a function
			case next < len(expr) && expr[next] == '{':
				end := skip(next)
				out = append(out, selector{word, expr[next+1 : end-1]})
				i = end
			default:
				out = append(out, selector{name: word})
			}
		default:
			i++
		}
	}
	return out
}

func TestDashboardPromSelectors(t *testing.T) {
	for expr, want := range map[string]string{
		`histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="y}"}[5m])))`: "a_bucket{x=\"y}\"}",
		`sum(rate(a[1m])) by (table) / b > 1e9`:                              "a b",
		`count by (version, goversion) (build_info{job=~"$job"})`:            `build_info{job=~"$job"}`,
		`a offset 5m and on(instance) group_left(version) b`:                 "a b",
		`label_replace(m, "dst", "$1", "src", "(.*)") unless bool c > +Inf`:  "m c",
		`sum without (op) (increase(x:rate5m[$__range])) * -0.5`:             "x:rate5m",
		`topk(3, q{a="b", c!~"d"})`:                                          `q{a="b", c!~"d"}`,
	} {
		var got []string
		for _, s := range promSelectors(expr) {
			if s.labels != "" {
				s.name += "{" + s.labels + "}"
			}
			got = append(got, s.name)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("promSelectors(%s) = %q, want %q", expr, got, want)
		}
	}
}

// The dashboard's structure: unique panel ids, a Prometheus data source
// and a query on every panel, the job and instance variables applied to
// every metric, ranges Grafana sizes, panels inside the 24-column grid.
func TestDashboardShape(t *testing.T) {
	d := loadDashboard(t)
	// An import placeholder (${DS_PROMETHEUS}) is filled in by Grafana's
	// import dialog only: a dashboard provisioned from a file would keep
	// it and find no such data source. The datasource variable serves both.
	if raw, _ := os.ReadFile(dashboardFile); strings.Contains(string(raw), "${DS_") {
		t.Errorf("%s holds an import placeholder ${DS_…}; use the datasource variable", dashboardFile)
	}
	if d.SchemaVersion != 39 {
		t.Errorf("schemaVersion %d, want 39", d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["job"] != "query" || vars["instance"] != "query" {
		t.Errorf("variables %v, want datasource (a data source), job and instance (queries)", vars)
	}
	ids := map[int]string{}
	const filter = `job=~"$job", instance=~"$instance"`
	ranges := regexp.MustCompile(`\[([^\]]*)\]`)
	for _, p := range d.allPanels() {
		if other, ok := ids[p.ID]; ok || p.ID == 0 {
			t.Errorf("panel %q: id %d, already panel %q's (or 0)", p.Title, p.ID, other)
		}
		ids[p.ID] = p.Title
		if g := p.GridPos; g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want prometheus ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: refId %q empty or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			sels := promSelectors(tg.Expr)
			if len(sels) == 0 {
				t.Errorf("panel %q: no metric in %q", p.Title, tg.Expr)
			}
			for _, s := range sels {
				if s.labels != filter {
					t.Errorf("panel %q: %s{%s}, want the selector {%s}", p.Title, s.name, s.labels, filter)
				}
			}
			for _, m := range ranges.FindAllStringSubmatch(tg.Expr, -1) {
				if m[1] != "$__rate_interval" && m[1] != "$__range" {
					t.Errorf("panel %q: range [%s], want [$__rate_interval] or [$__range]", p.Title, m[1])
				}
			}
		}
	}
	names := d.metricNames()
	known := regexp.MustCompile(`^(pg2kinesis|go|process)_[a-z0-9_]+$`)
	for _, n := range names {
		if !known.MatchString(n) {
			t.Errorf("%q is not a metric of pg2kinesis, Go or the process: a bad query, or the extractor misread one", n)
		}
	}
	if len(names) < 20 {
		t.Errorf("%d metrics found in the dashboard, want more: %v", len(names), names)
	}
}

// A run with a snapshot, a throttled PutRecords call (through the fault
// proxy), a filtered and an oversize change serves every metric the
// dashboard queries: each would otherwise only appear after its event.
func TestDashboardMetricsLive(t *testing.T) {
	t.Parallel()
	names := loadDashboard(t).metricNames()
	dsn, ep := testenv.Database(t), testenv.KinesisEndpoint(t)
	conn := testenv.Connect(t, dsn)
	sqlExec(t, conn, "CREATE TABLE items (id int PRIMARY KEY, v text)",
		"INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, 50) g", "ANALYZE items")
	stream := testenv.Stream(t, testenv.KinesisClient(t, ep), 1)
	proxy := kinesisproxy.Start(t, ep)
	proxy.Plan = func(n int) kinesisproxy.Fault {
		if n == 0 {
			return kinesisproxy.Throttle
		}
		return kinesisproxy.Pass
	}
	slot := testenv.Name(t)
	d := startDaemon(t, append(connArgs(t, dsn), "-s", slot, "--create-slot", "--pg-slot-output-plugin", "wal2json",
		"--kinesis-endpoint", proxy.URL, "-k", stream, "-f", "JSON",
		"--operations", "insert,update,read", "--oversize", "skip",
		"--snapshot", "initial", "--snapshot-chunk-rows", "10",
		"--status-interval", "200ms", "--flush-interval", "50ms", "--max-backoff", "1s", "--lag-interval", "200ms")...)
	base := metricsURL(t, d)
	// The changes come after the snapshot, so that none drops a row of it.
	waitFor(t, 60*time.Second, "the snapshot of public.items to be done", func() bool {
		running(t, d)
		return strings.Contains(scrape(t, base), `pg2kinesis_snapshot_state{state="done",table="public.items"} 1`)
	})
	// The delete is filtered (--operations leaves deletes out), row 52 is
	// skipped (its record is over Kinesis' 1 MiB, with --oversize skip).
	sqlExec(t, conn, "INSERT INTO items VALUES (51, 'new')", "UPDATE items SET v = 'changed' WHERE id = 1",
		"DELETE FROM items WHERE id = 2", "INSERT INTO items VALUES (52, repeat('x', 1100000))")

	const records = 50 + 2 // the snapshot's reads, the insert and the update
	deadline := time.Now().Add(60 * time.Second)
	for {
		running(t, d)
		page := scrape(t, base)
		var missing []string
		for _, n := range names {
			if _, ok := metric(page, n); !ok {
				missing = append(missing, n)
			}
		}
		acked, _ := metric(page, "pg2kinesis_records_acknowledged_total")
		throttles, _ := metric(page, "pg2kinesis_kinesis_throttles_total")
		skipped, _ := metric(page, "pg2kinesis_changes_skipped_total")
		if len(missing) == 0 && acked >= records && throttles >= 1 && skipped >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %v records acknowledged (want %d), %v throttles, %v skipped; metrics the dashboard queries and /metrics lacks: %s\nlog:\n%s",
				acked, records, throttles, skipped, strings.Join(missing, ", "), d.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the %d metrics the dashboard queries are served: %s", len(names), fmt.Sprint(names))
	d.stop(t)
}
