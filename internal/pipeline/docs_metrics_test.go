package pipeline

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
)

// docs/operations.md's metric table lists every pg2kinesis metric a run
// registers, and no other.
func TestOperationsDocListsTheMetrics(t *testing.T) {
	m := metrics.New("", "")
	(&observer{}).register(m) // registering reads nothing of the run
	descs := make(chan *prometheus.Desc)
	go func() {
		m.Registry.Describe(descs)
		close(descs)
	}()
	fqName := regexp.MustCompile(`fqName: "(pg2kinesis_[a-z_]+)"`)
	var registered []string
	for d := range descs {
		if n := fqName.FindStringSubmatch(d.String()); n != nil {
			registered = append(registered, n[1])
		}
	}
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, row := range regexp.MustCompile("(?m)^\\| `(pg2kinesis_[a-z_]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, row[1])
	}
	slices.Sort(registered)
	slices.Sort(documented)
	if len(registered) < 30 {
		t.Fatalf("only %d metrics registered: %v", len(registered), registered)
	}
	if missing := minus(registered, documented); len(missing) > 0 {
		t.Errorf("metrics not in docs/operations.md's table: %s", strings.Join(missing, ", "))
	}
	if extra := minus(documented, registered); len(extra) > 0 {
		t.Errorf("docs/operations.md lists metrics that are not registered: %s", strings.Join(extra, ", "))
	}
}

// minus is the names of a not in b.
func minus(a, b []string) []string {
	var out []string
	for _, n := range a {
		if !slices.Contains(b, n) {
			out = append(out, n)
		}
	}
	return out
}
