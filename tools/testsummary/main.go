// Command testsummary reads `go test -json` and prints what `go test`
// prints (a line per package, the output of the tests that failed), then
// one line naming the tests that skipped because a service was missing
// (make check runs it):
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

// summarize copies the package lines and failed tests' output of the
// events in r to w, then the line of skipped tests, and reports whether a
// test or package failed.
func summarize(r io.Reader, w io.Writer) (failed bool, err error) {
	output := map[string][]string{} // package + test: its output so far
	var skipped []string            // "package.Test"
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			// go test prints build errors as text, not events.
			fmt.Fprintln(w, string(line))
			continue
		}
		id := e.Package + "." + e.Test
		switch {
		case e.Action == "build-output":
			fmt.Fprint(w, e.Output)
		case e.Action == "build-fail":
			failed = true
		case e.Action == "output" && e.Test == "":
			if e.Output != "PASS\n" {
				fmt.Fprint(w, e.Output)
			}
		case e.Action == "output":
			output[id] = append(output[id], e.Output)
		case e.Action == "fail":
			failed = true
			if e.Test != "" {
				fmt.Fprint(w, strings.Join(output[id], ""))
			}
			delete(output, id)
		case e.Action == "skip" && e.Test != "" && strings.Contains(strings.Join(output[id], ""), serviceMissing):
			skipped = append(skipped, strings.TrimPrefix(e.Package, modulePrefix(e.Package))+"."+e.Test)
			delete(output, id)
		case e.Action == "pass" || e.Action == "skip":
			delete(output, id)
		}
	}
	if err := sc.Err(); err != nil {
		return failed, fmt.Errorf("read go test -json: %w", err)
	}
	if len(skipped) > 0 {
		slices.Sort(skipped)
		tests := "tests"
		if len(skipped) == 1 {
			tests = "test"
		}
		fmt.Fprintf(w, "skipped %d %s that need Postgres or kinesalite (start them with `make services`; under CI=true they fail): %s\n",
			len(skipped), tests, strings.Join(skipped, ", "))
	}
	return failed, nil
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
