package main

import (
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	const pkg = "github.com/pg2kinesis/pg2kinesis/internal/source"
	for _, tc := range []struct {
		name       string
		events     []string
		want       string
		wantFailed bool
	}{{
		name: "a service skip is named, a version skip and a pass are not",
		events: []string{
			`{"Action":"run","Package":"` + pkg + `","Test":"TestLive"}`,
			`{"Action":"output","Package":"` + pkg + `","Test":"TestLive","Output":"    testenv.go:39: Postgres is not reachable (dial tcp): start it with ` + "`make services`" + `\n"}`,
			`{"Action":"skip","Package":"` + pkg + `","Test":"TestLive"}`,
			`{"Action":"output","Package":"` + pkg + `","Test":"TestOld","Output":"    version.go:66: PostgreSQL 12: x needs PostgreSQL 13 or later\n"}`,
			`{"Action":"skip","Package":"` + pkg + `","Test":"TestOld"}`,
			`{"Action":"output","Package":"` + pkg + `","Test":"TestUnit","Output":"--- PASS: TestUnit (0.00s)\n"}`,
			`{"Action":"pass","Package":"` + pkg + `","Test":"TestUnit"}`,
			`{"Action":"output","Package":"` + pkg + `","Output":"a word from TestMain\n"}`,
			`{"Action":"output","Package":"` + pkg + `","Output":"PASS\n"}`,
			`{"Action":"output","Package":"` + pkg + `","Output":"ok  \t` + pkg + `\t0.1s\n"}`,
			`{"Action":"pass","Package":"` + pkg + `"}`,
		},
		want: "ok  \t" + pkg + "\t0.1s\n" +
			"skipped 1 test for want of a service (Postgres, kinesalite, initdb or node: `make services` starts them; under CI=true they fail): internal/source.TestLive\n",
	}, {
		name: "a failed test's output is shown",
		events: []string{
			`{"Action":"output","Package":"` + pkg + `","Test":"TestBroken","Output":"=== RUN   TestBroken\n"}`,
			`{"Action":"output","Package":"` + pkg + `","Test":"TestBroken","Output":"    x_test.go:9: want 1, got 2\n"}`,
			`{"Action":"output","Package":"` + pkg + `","Test":"TestBroken","Output":"--- FAIL: TestBroken (0.00s)\n"}`,
			`{"Action":"fail","Package":"` + pkg + `","Test":"TestBroken"}`,
			`{"Action":"output","Package":"` + pkg + `","Output":"FAIL\t` + pkg + `\t0.1s\n"}`,
			`{"Action":"fail","Package":"` + pkg + `"}`,
		},
		want:       "    x_test.go:9: want 1, got 2\n--- FAIL: TestBroken (0.00s)\nFAIL\t" + pkg + "\t0.1s\n",
		wantFailed: true,
	}, {
		name: "a test that never ended (a timeout) is shown with its package",
		events: []string{
			`{"Action":"output","Package":"` + pkg + `","Test":"TestSlow","Output":"=== RUN   TestSlow\n"}`,
			`{"Action":"output","Package":"` + pkg + `","Test":"TestSlow","Output":"panic: test timed out after 3s\n"}`,
			`{"Action":"output","Package":"` + pkg + `","Output":"FAIL\t` + pkg + `\t3.0s\n"}`,
			`{"Action":"fail","Package":"` + pkg + `"}`,
		},
		want:       "panic: test timed out after 3s\nFAIL\t" + pkg + "\t3.0s\n",
		wantFailed: true,
	}, {
		name: "output with no end is shown",
		events: []string{
			`{"Action":"output","Package":"` + pkg + `","Test":"TestGone","Output":"signal: killed\n"}`,
		},
		want: "signal: killed\n",
	}, {
		name: "a build failure is shown and fails",
		events: []string{
			`{"ImportPath":"` + pkg + `","Action":"build-output","Output":"internal/source/x.go:1:1: syntax error\n"}`,
			`{"ImportPath":"` + pkg + `","Action":"build-fail"}`,
			`# not JSON`,
		},
		want:       "internal/source/x.go:1:1: syntax error\n# not JSON\n",
		wantFailed: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			failed, err := summarize(strings.NewReader(strings.Join(tc.events, "\n")+"\n"), &out)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want || failed != tc.wantFailed {
				t.Fatalf("got failed=%v and\n%q\nwant failed=%v and\n%q", failed, out.String(), tc.wantFailed, tc.want)
			}
		})
	}
}
