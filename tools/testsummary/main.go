// Command testsummary reads `go test -json` and prints what `go test`
// prints (a line per package, the output of what failed), then one line
// naming the tests that skipped because a service was missing (make check
// runs it):
//
//	go test -json ./... | go run ./tools/testsummary
//
// `go test ./...` cannot say it: it shows a passing package's output only
// with -v, and a skip is a pass.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// serviceMissing ends the skip message of internal/testenv's unavailable:
// the one reason for a skip that starting the services would remove.
const serviceMissing = "start it with `make services`"

// event is the part of test2json's output used here.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

func main() {
	failed, err := summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testsummary: %v\n", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// summarize writes to w what go test would print for the events in r (a
// package's summary line; a failed test's output; all of a failed
// package's, with the tests it never finished: a timeout, a panic), then
// the line of skipped tests, and reports whether anything failed.
func summarize(r io.Reader, w io.Writer) (failed bool, err error) {
	var out outputs
	var skipped []string // "package.Test"
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			// go test prints some build errors as text, not events.
			fmt.Fprintln(w, string(line))
			continue
		}
		switch {
		case e.Action == "build-output":
			fmt.Fprint(w, e.Output)
		case e.Action == "build-fail":
			failed = true
		case e.Action == "output":
			out.add(e)
		case e.Test != "" && e.Action == "fail":
			failed = true
			fmt.Fprint(w, out.take(e.Package, e.Test))
		case e.Test != "" && e.Action == "skip":
			if strings.Contains(out.take(e.Package, e.Test), serviceMissing) {
				skipped = append(skipped, strings.TrimPrefix(e.Package, modulePrefix(e.Package))+"."+e.Test)
			}
		case e.Test != "" && e.Action == "pass":
			out.take(e.Package, e.Test)
		case e.Action == "fail": // a package
			failed = true
			fmt.Fprint(w, out.rest(e.Package, false))
		case e.Action == "pass" || e.Action == "skip": // a package
			fmt.Fprint(w, out.rest(e.Package, true))
		}
	}
	if err := sc.Err(); err != nil {
		return failed, fmt.Errorf("read go test -json: %w", err)
	}
	fmt.Fprint(w, out.all()) // a test binary that ended without a word
	if len(skipped) > 0 {
		slices.Sort(skipped)
		tests := "tests"
		if len(skipped) == 1 {
			tests = "test"
		}
		fmt.Fprintf(w, "skipped %d %s for want of a service (Postgres, kinesalite, initdb or node: `make services` starts them; under CI=true they fail): %s\n",
			len(skipped), tests, strings.Join(skipped, ", "))
	}
	return failed, nil
}

// outputs holds the output of each test and package not yet ended, in
// the order it came.
type outputs struct {
	ids  []string // package + "\x00" + test (empty for the package's own)
	text map[string]*strings.Builder
}

func (o *outputs) add(e event) {
	if strings.HasPrefix(e.Output, "=== ") {
		return // RUN, PAUSE, CONT, NAME: go test without -v hides them
	}
	id := e.Package + "\x00" + e.Test
	if o.text == nil {
		o.text = map[string]*strings.Builder{}
	}
	b, ok := o.text[id]
	if !ok {
		b = &strings.Builder{}
		o.text[id] = b
		o.ids = append(o.ids, id)
	}
	b.WriteString(e.Output)
}

// take removes and returns a test's output.
func (o *outputs) take(pkg, test string) string {
	id := pkg + "\x00" + test
	b, ok := o.text[id]
	if !ok {
		return ""
	}
	delete(o.text, id)
	o.ids = slices.DeleteFunc(o.ids, func(s string) bool { return s == id })
	return b.String()
}

// rest removes and returns what is left of a package that ended: passed,
// its summary line alone (go test hides the rest); failed, every test's
// output in order, then its own.
func (o *outputs) rest(pkg string, passed bool) string {
	var sb strings.Builder
	var own string
	for _, id := range slices.Clone(o.ids) {
		p, test, _ := strings.Cut(id, "\x00")
		if p != pkg {
			continue
		}
		text := o.take(p, test)
		switch {
		case test == "":
			own = text
		case !passed:
			sb.WriteString(text)
		}
	}
	for line := range strings.Lines(own) {
		if !passed && line != "PASS\n" || strings.HasPrefix(line, "ok  ") || strings.HasPrefix(line, "?   ") {
			sb.WriteString(line)
		}
	}
	return sb.String()
}

// all removes and returns every output left.
func (o *outputs) all() string {
	var sb strings.Builder
	for _, id := range slices.Clone(o.ids) {
		p, test, _ := strings.Cut(id, "\x00")
		sb.WriteString(o.take(p, test))
	}
	return sb.String()
}

// modulePrefix is the part of a package path the line leaves out: up to
// and including the module's last element before cmd/, internal/ or tools/.
func modulePrefix(pkg string) string {
	for _, dir := range []string{"/cmd/", "/internal/", "/tools/"} {
		if i := strings.Index(pkg, dir); i >= 0 {
			return pkg[:i+1]
		}
	}
	return ""
}
