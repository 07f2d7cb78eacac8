package wal2json

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from what the parser gives")

// message is one line of a testdata corpus: an LSN and the plugin's text.
type message struct {
	lsn  pglogrepl.LSN
	data []byte
}

// readCorpus reads lines "LSN JSON-string", as this query prints them:
//
//	SELECT lsn || ' ' || to_json(data)::text
//	FROM pg_logical_slot_peek_changes('slot', NULL, NULL, 'format-version', '2', ...)
func readCorpus(tb testing.TB, path string) []message {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var msgs []message
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		lsnText, js, ok := strings.Cut(sc.Text(), " ")
		lsn, err := pglogrepl.ParseLSN(lsnText)
		var data string
		if err == nil && ok {
			err = json.Unmarshal([]byte(js), &data)
		}
		if err != nil || !ok {
			tb.Fatalf("%s:%d: want LSN and a JSON string: %v", path, n, err)
		}
		msgs = append(msgs, message{lsn, []byte(data)})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return msgs
}

// dump renders an event for golden files and failure messages: every
// field, one column a line, values quoted so "" and null differ.
func dump(ev *decode.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s xid=%d", ev.LSN, ev.Kind, ev.XID)
	if !ev.CommitTime.IsZero() {
		fmt.Fprintf(&b, " time=%s", ev.CommitTime.UTC().Format("2006-01-02T15:04:05.999999Z"))
	}
	if ev.CommitLSN != 0 {
		fmt.Fprintf(&b, " commit-lsn=%s", ev.CommitLSN)
	}
	if ev.Op != 0 {
		fmt.Fprintf(&b, " %s", ev.Op)
	}
	if ev.Table != (decode.Table{}) {
		fmt.Fprintf(&b, " %q.%q (%s)", ev.Table.Schema, ev.Table.Name, ev.Table.Raw)
	}
	if ev.Kind == decode.KindMessage {
		fmt.Fprintf(&b, " transactional=%t prefix=%q content=%q", ev.MessageTransact, ev.MessagePrefix, ev.MessageContent)
	}
	for _, t := range ev.Truncated {
		fmt.Fprintf(&b, "\n  truncated %q.%q (%s)", t.Schema, t.Name, t.Raw)
	}
	if ev.RestartSeqs || ev.Cascade {
		fmt.Fprintf(&b, "\n  restart_seqs=%t cascade=%t", ev.RestartSeqs, ev.Cascade)
	}
	for _, c := range ev.Old {
		fmt.Fprintf(&b, "\n  old %s", dumpColumn(c))
	}
	for _, c := range ev.New {
		fmt.Fprintf(&b, "\n  new %s", dumpColumn(c))
	}
	for _, name := range ev.UnchangedToast {
		fmt.Fprintf(&b, "\n  unchanged-toast %q", name)
	}
	return b.String()
}

func dumpColumn(c decode.Column) string {
	v := "null"
	if !c.Null {
		v = strconv.Quote(string(c.Value))
		if len(v) > 80 {
			v = fmt.Sprintf("%s… (%d bytes)", v[:60], len(c.Value))
		}
	}
	kind := map[decode.ValueKind]string{decode.String: "string", decode.Number: "number", decode.Bool: "bool"}[c.Kind]
	return fmt.Sprintf("%q [%s] %s %s", c.Name, c.Type, kind, v)
}

// TestGolden parses every message of a real session (testdata/workload.sql
// on PostgreSQL 15 with wal2json 2.5), in order with one Parser, and
// compares the events with the golden file. Regenerate with go test
// -update and review the diff.
func TestGolden(t *testing.T) {
	msgs := readCorpus(t, "testdata/pg15.txt")
	p := New()
	var got bytes.Buffer
	for _, m := range msgs {
		ev, err := p.Parse(m.data, m.lsn)
		if err != nil {
			t.Fatalf("%v", err)
		}
		got.WriteString(dump(ev))
		got.WriteByte('\n')
	}
	const golden = "testdata/pg15.golden"
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		gl, wl := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s\n(go test -update rewrites it)", golden, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s: got %d lines, want %d (go test -update rewrites it)", golden, len(gl), len(wl))
	}
}
