package pipeline

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/catalog/catalogtest"
	"github.com/pg2kinesis/pg2kinesis/internal/checkpoint"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/filter"
	"github.com/pg2kinesis/pg2kinesis/internal/format"
	"github.com/pg2kinesis/pg2kinesis/internal/sink"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

var (
	update  = flag.Bool("update", false, "rewrite testdata/*.golden from the captured inputs")
	capture = flag.Bool("capture", false, "capture testdata/*.input again from the local Postgres (make services)")
)

// The golden workload (testdata/workload.sql) is captured once from a real
// server as plugin messages (testdata/<plugin>.input), and each formatter's
// records for them are pinned in testdata/<plugin>.<variant>.golden. The
// live test below checks that the server still produces the same records.

var goldenPlugins = []decode.Plugin{decode.TestDecoding, decode.Wal2JSON, decode.PGOutput}

type variant struct {
	name       string
	formatter  format.Name
	fullChange bool
}

var variants = []variant{{"CSV", "CSV", false}, {"CSVPayload", "CSVPayload", false}, {"full-change", "CSVPayload", true}, {"JSON", "JSON", false}}

// goldenKeys are the tables that workload.sql creates, with their keys.
var goldenKeys = catalog.Keys{
	{Schema: "public", Table: "text_key"}:   catalog.PK("k"),
	{Schema: "public", Table: "composite"}:  catalog.PK("a", "b"),
	{Schema: "public", Table: "uuid_key"}:   catalog.PK("id"),
	{Schema: "public", Table: "nokey"}:      {},
	{Schema: "Sales Dept", Table: "Order"}:  catalog.PK("Order Id"),
	{Schema: "public", Table: "orders"}:     catalog.PK("code"),
	{Schema: "public", Table: "docs"}:       catalog.PK("id"),
	{Schema: "public", Table: "types"}:      catalog.PK("id"),
	{Schema: "public", Table: "full_ident"}: catalog.PK("id"),
	{Schema: "public", Table: "t1"}:         catalog.PK("id"),
	{Schema: "public", Table: "t2"}:         catalog.PK("id"),
}

// captured is one plugin message: text (Data), or binary as hex (pgoutput).
type captured struct {
	LSN  string `json:"lsn"`
	Data string `json:"data,omitempty"`
	Hex  string `json:"hex,omitempty"`
}

func (m captured) bytes(t *testing.T) []byte {
	if m.Hex == "" {
		return []byte(m.Data)
	}
	b, err := hex.DecodeString(m.Hex)
	if err != nil {
		t.Fatalf("message at %s: %v", m.LSN, err)
	}
	return b
}

// captureSink keeps every record as a line, and its partition key, and
// acknowledges it at once.
type captureSink struct {
	ack     sink.AckFunc
	mu      sync.Mutex
	lines   []string
	pks     []string
	streams []string
}

func (s *captureSink) Put(_ context.Context, r sink.Record) error {
	s.mu.Lock()
	s.lines = append(s.lines, string(r.Data))
	s.pks = append(s.pks, r.PartitionKey)
	s.streams = append(s.streams, r.Stream)
	s.mu.Unlock()
	if s.ack != nil {
		s.ack([]uint64{r.Seq})
	}
	return nil
}

func (s *captureSink) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (s *captureSink) Drain(context.Context) error   { return nil }
func (s *captureSink) Close() error                  { return nil }

func (s *captureSink) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

func readInput(t *testing.T, p decode.Plugin) []captured {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", p.String()+".input"))
	if err != nil {
		t.Fatalf("%v (capture it with go test ./internal/pipeline -run TestGolden -capture)", err)
	}
	defer f.Close()
	var msgs []captured
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m captured
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// labelled runs msgs through a change handler and returns its records, each
// prefixed with the workload case it belongs to.
func labelled(t *testing.T, p decode.Plugin, v variant, msgs []captured) []string {
	t.Helper()
	handlerParser, _ := newParser(p)
	labelParser, _ := newParser(p)
	f, err := format.New(v.formatter, format.Options{Plugin: p, FullChange: v.fullChange})
	if err != nil {
		t.Fatal(err)
	}
	keys := catalog.New(catalogtest.Fixed(goldenKeys), nil)
	snk := &captureSink{}
	cfg := Config{FullChange: v.fullChange, Formatter: v.formatter}
	h := newChangeHandler(source.New(source.Config{}), checkpoint.New(0), handlerParser, filter.New(nil, nil), keys, f, snk, cfg, nil)
	var out []string
	label := "-"
	for _, m := range msgs {
		lsn, err := pglogrepl.ParseLSN(m.LSN)
		if err != nil {
			t.Fatal(err)
		}
		data := m.bytes(t)
		ev, err := labelParser.Parse(data, lsn)
		if err != nil {
			t.Fatalf("parse %q: %v", data, err)
		}
		if ev.Kind == decode.KindMessage && ev.MessagePrefix == "pg2kinesis-case" {
			label = string(ev.MessageContent)
		}
		before := len(snk.lines)
		if err := h.HandleData(t.Context(), pglogrepl.XLogData{WALStart: lsn, WALData: data}); err != nil {
			t.Fatalf("handle %q: %v", data, err)
		}
		for _, r := range snk.lines[before:] {
			out = append(out, label+"\t"+r)
		}
	}
	return out
}

func goldenPath(p decode.Plugin, v variant) string {
	return filepath.Join("testdata", p.String()+"."+v.name+".golden")
}

func TestGolden(t *testing.T) {
	if *capture {
		for _, p := range goldenPlugins {
			captureInput(t, p)
		}
	}
	for _, p := range goldenPlugins {
		msgs := readInput(t, p)
		for _, v := range variants {
			t.Run(p.String()+"/"+v.name, func(t *testing.T) {
				got := strings.Join(labelled(t, p, v, msgs), "\n") + "\n"
				path := goldenPath(p, v)
				if *update {
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (write it with -update)", err)
				}
				if got != string(want) {
					t.Errorf("records differ from %s (rewrite with -update and review the diff):\n%s", path, lineDiff(string(want), got))
				}
			})
		}
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d\n  want %s\n  got  %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}

// captureInput runs workload.sql on a fresh database and stores what the
// plugin's slot produced.
func captureInput(t *testing.T, p decode.Plugin) {
	t.Helper()
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	if p == decode.PGOutput { // before the slot, which must see it
		if _, err := conn.Exec(t.Context(), "CREATE PUBLICATION pg2kinesis FOR ALL TABLES"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(t.Context(), "SELECT pg_create_logical_replication_slot($1, $2)", slotName(p), p.String()); err != nil {
		t.Fatal(err)
	}
	workload, err := os.ReadFile(filepath.Join("testdata", "workload.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), string(workload)); err != nil {
		t.Fatalf("workload.sql: %v", err)
	}
	var opts []string
	for _, o := range p.StartOptions() { // `"name" 'value'` → name, value
		parts := strings.SplitN(o, " ", 2)
		opts = append(opts, strings.Trim(parts[0], `"`), strings.Trim(parts[1], `'`))
	}
	args := []any{}
	sql := "SELECT lsn::text, data FROM pg_logical_slot_peek_changes('" + slotName(p) + "', NULL, NULL"
	if p == decode.PGOutput { // binary; messages on, for the case labels
		opts = []string{"proto_version", "1", "publication_names", "pg2kinesis", "messages", "true"}
		sql = "SELECT lsn::text, encode(data, 'hex') FROM pg_logical_slot_peek_binary_changes('" + slotName(p) + "', NULL, NULL"
	}
	for i, o := range opts {
		sql += ", $" + strconv.Itoa(i+1)
		args = append(args, o)
	}
	rows, err := conn.Query(t.Context(), sql+")", args...)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for rows.Next() {
		var m captured
		if err := rows.Scan(&m.LSN, &m.Data); err != nil {
			t.Fatal(err)
		}
		if p == decode.PGOutput {
			m.Hex, m.Data = m.Data, ""
		}
		line, _ := json.Marshal(m)
		b.Write(line)
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", p.String()+".input"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

var (
	xidField = regexp.MustCompile(`^0,CDC,(\d+),|^0,CDC,\{"xid": "?(\d+)"?`)
	// The JSON record's fields that differ between runs.
	jsonRunFields = regexp.MustCompile(`"(xid|lsn|commit_lsn|commit_time)":("[^"]*"|\d+)`)
)

// normaliseXIDs replaces each transaction id, and in JSON records each LSN
// and commit time, by its order of appearance (per field), so that records
// from two runs of the same workload compare equal while which records
// share a transaction, an LSN or a commit still has to match.
func normaliseXIDs(lines []string) []string {
	seen := map[string]int{}
	jsonSeen := map[string]map[string]int{}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = xidField.ReplaceAllStringFunc(l, func(m string) string {
			sub := xidField.FindStringSubmatch(m)
			xid := sub[1] + sub[2]
			if _, ok := seen[xid]; !ok {
				seen[xid] = len(seen) + 1
			}
			return strings.Replace(m, xid, "X"+strconv.Itoa(seen[xid]), 1)
		})
		if !strings.HasPrefix(l, "{") {
			continue
		}
		out[i] = jsonRunFields.ReplaceAllStringFunc(out[i], func(m string) string {
			sub := jsonRunFields.FindStringSubmatch(m)
			field, v := sub[1], sub[2]
			if jsonSeen[field] == nil {
				jsonSeen[field] = map[string]int{}
			}
			if _, ok := jsonSeen[field][v]; !ok {
				jsonSeen[field][v] = len(jsonSeen[field]) + 1
			}
			return `"` + field + `":"#` + strconv.Itoa(jsonSeen[field][v]) + `"`
		})
	}
	return out
}

func slotName(p decode.Plugin) string { return "golden_" + p.String() }

// jsonKeys are the JSON record's keys, in order (docs/formats.md §4).
var jsonKeys = []string{"op", "schema", "table", "xid", "lsn", "commit_lsn", "commit_time", "pk", "before", "after", "unchanged_toast"}

// Every JSON golden record is one valid JSON object with the keys of
// docs/formats.md §4 in their order, and types that do not vary by plugin.
func TestGoldenJSONIsValid(t *testing.T) {
	for _, p := range goldenPlugins {
		golden, err := os.ReadFile(goldenPath(p, variant{name: "JSON"}))
		if err != nil {
			t.Fatal(err)
		}
		for n, l := range strings.Split(strings.TrimSuffix(string(golden), "\n"), "\n") {
			rec := []byte(l[strings.IndexByte(l, '\t')+1:])
			var m map[string]any
			if err := json.Unmarshal(rec, &m); err != nil {
				t.Fatalf("%s line %d: %v", p, n+1, err)
			}
			dec := json.NewDecoder(strings.NewReader(string(rec)))
			dec.UseNumber()
			var keys []string
			if tok, _ := dec.Token(); tok != json.Delim('{') {
				t.Fatalf("%s line %d: not an object", p, n+1)
			}
			for dec.More() {
				k, _ := dec.Token()
				keys = append(keys, k.(string))
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					t.Fatal(err)
				}
			}
			if strings.Join(keys, ",") != strings.Join(jsonKeys, ",") {
				t.Errorf("%s line %d: keys %v, want %v", p, n+1, keys, jsonKeys)
			}
			_, xidIsNumber := m["xid"].(float64)
			_, toastIsArray := m["unchanged_toast"].([]any)
			if !xidIsNumber || !toastIsArray || m["op"] == nil || m["lsn"] == nil {
				t.Errorf("%s line %d: xid %T, unchanged_toast %T, op %v, lsn %v", p, n+1, m["xid"], m["unchanged_toast"], m["op"], m["lsn"])
			}
		}
	}
}

// --full-change changes no JSON record: JSON publishes the table without
// a key either way, with "pk": null.
func TestGoldenJSONIgnoresFullChange(t *testing.T) {
	for _, p := range goldenPlugins {
		msgs := readInput(t, p)
		plain := labelled(t, p, variant{"JSON", "JSON", false}, msgs)
		full := labelled(t, p, variant{"JSON", "JSON", true}, msgs)
		if strings.Join(full, "\n") != strings.Join(plain, "\n") {
			t.Errorf("%s: JSON with --full-change differs:\n%s", p, lineDiff(strings.Join(plain, "\n"), strings.Join(full, "\n")))
		}
		keyless := 0
		for _, l := range plain {
			if strings.HasPrefix(l, "no-primary-key\t") {
				keyless++
				if !strings.Contains(l, `"table":"nokey"`) || !strings.Contains(l, `"pk":null`) {
					t.Errorf("%s: %s, want the nokey insert with pk null", p, l)
				}
			}
		}
		if keyless != 1 {
			t.Errorf("%s: %d records of the table without a key, want 1", p, keyless)
		}
	}
}
