// Package decodetest holds what the plugin parsers' tests share: reading
// a corpus of real plugin messages, rendering events for golden files,
// and comparing with them. Only tests import it.
package decodetest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// Message is one message of a corpus.
type Message struct {
	LSN  pglogrepl.LSN
	Data []byte
}

// ReadCorpus reads lines "LSN DATA", where unquote turns DATA back into
// the message: a JSON string for the text plugins (messages may hold
// newlines), hex for pgoutput's binary messages.
func ReadCorpus(tb testing.TB, path string, unquote func(string) ([]byte, error)) []Message {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var msgs []Message
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for n := 1; sc.Scan(); n++ {
		lsnText, text, ok := strings.Cut(sc.Text(), " ")
		lsn, err := pglogrepl.ParseLSN(lsnText)
		var data []byte
		if err == nil && ok {
			data, err = unquote(text)
		}
		if err != nil || !ok {
			tb.Fatalf("%s:%d: want an LSN and a message: %v", path, n, err)
		}
		msgs = append(msgs, Message{lsn, data})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return msgs
}

// JSONText reads a message written as a JSON string, as the text plugins'
// corpora hold them (SELECT lsn || ' ' || to_json(data)::text ...), since a
// message may hold newlines.
func JSONText(s string) ([]byte, error) {
	var data string
	err := json.Unmarshal([]byte(s), &data)
	return []byte(data), err
}

// ParseGolden parses every message of the corpus at corpusPath, in order
// with one parse function (one Parser), and compares the events, dumped
// with values cut at maxValue, with the golden file (see Golden).
func ParseGolden(t *testing.T, corpusPath, goldenPath string, unquote func(string) ([]byte, error),
	parse func([]byte, pglogrepl.LSN) (*decode.Event, error), maxValue int, update bool) {
	t.Helper()
	var got bytes.Buffer
	for _, m := range ReadCorpus(t, corpusPath, unquote) {
		ev, err := parse(m.Data, m.LSN)
		if err != nil {
			t.Fatalf("%v", err)
		}
		got.WriteString(Dump(ev, maxValue))
		got.WriteByte('\n')
	}
	Golden(t, goldenPath, got.Bytes(), update)
}

// Dump renders an event for golden files and failure messages: every
// field, one column a line, values quoted so "" and null differ. Values
// longer than maxValue bytes (0: no limit) are cut, with their length.
func Dump(ev *decode.Event, maxValue int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s xid=%d", ev.LSN, ev.Kind, ev.XID)
	if ev.SubXID != 0 {
		fmt.Fprintf(&b, " subxid=%d", ev.SubXID)
	}
	if ev.FirstSegment {
		b.WriteString(" first-segment")
	}
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
	if ev.KeyStated {
		fmt.Fprintf(&b, " primary-key=%q", ev.PrimaryKey)
	}
	if ev.IdentityKey != nil {
		fmt.Fprintf(&b, " identity-key=%q", ev.IdentityKey)
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
		fmt.Fprintf(&b, "\n  old %s", DumpColumn(c, maxValue))
	}
	for _, c := range ev.New {
		fmt.Fprintf(&b, "\n  new %s", DumpColumn(c, maxValue))
	}
	for _, name := range ev.UnchangedToast {
		fmt.Fprintf(&b, "\n  unchanged-toast %q", name)
	}
	return b.String()
}

// DumpColumn renders one column as Dump does.
func DumpColumn(c decode.Column, maxValue int) string {
	v := "null"
	if !c.Null {
		v = strconv.Quote(string(c.Value))
		if maxValue > 0 && len(v) > maxValue {
			v = fmt.Sprintf("%s… (%d bytes)", v[:maxValue*3/4], len(c.Value))
		}
	}
	kind := map[decode.ValueKind]string{decode.String: "string", decode.Number: "number", decode.Bool: "bool"}[c.Kind]
	return fmt.Sprintf("%q [%s] %s %s", c.Name, c.Type, kind, v)
}

// Golden compares got with the golden file at path, after rewriting the
// file from got when update is set (go test -update), and names the first
// line that differs.
func Golden(t *testing.T, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range min(len(gl), len(wl)) {
		if gl[i] != wl[i] {
			t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s\n(go test -update rewrites it)", path, i+1, gl[i], wl[i])
		}
	}
	t.Fatalf("%s: got %d lines, want %d (go test -update rewrites it)", path, len(gl), len(wl))
}
