package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// TestPluginsAgree runs the golden workload once, on one database with a
// slot per plugin made before it, and streams each slot through the
// pipeline as CSV: the three give the same records, with the same xids,
// tables and keys. What docs/formats.md lets differ is normalised first: the
// case of the operation, and test_decoding's quoting of identifiers
// ("Sales Dept"."Order" for Sales Dept.Order).
func TestPluginsAgree(t *testing.T) {
	workload, err := os.ReadFile(filepath.Join("testdata", "workload.sql"))
	if err != nil {
		t.Fatal(err)
	}
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	if _, err := conn.Exec(t.Context(), "CREATE PUBLICATION pg2kinesis FOR ALL TABLES"); err != nil {
		t.Fatal(err)
	}
	// wal2json is on the PostgreSQL 15 test server only: elsewhere the
	// other two are compared, with test_decoding's records as the base.
	base := decode.Wal2JSON
	var plugins []decode.Plugin
	for _, p := range goldenPlugins {
		if testenv.HasPlugin(t, p.String()) {
			plugins = append(plugins, p)
		}
	}
	if !testenv.HasPlugin(t, base.String()) {
		t.Logf("PostgreSQL %d: without wal2json, which the tests have on %d only", testenv.ServerMajor(t), testenv.Wal2JSONMajor)
		base = decode.TestDecoding
	}
	slots := map[decode.Plugin]string{}
	for _, p := range plugins {
		slots[p] = "agree_" + p.String()
		if _, err := conn.Exec(t.Context(), "SELECT pg_create_logical_replication_slot($1, $2)", slots[p], p.String()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(t.Context(), string(workload)); err != nil {
		t.Fatalf("workload.sql: %v", err)
	}
	want := 0
	for _, l := range strings.Split(readGolden(t, decode.Wal2JSON, variants[0]), "\n") {
		if l != "" {
			want++
		}
	}
	got := map[decode.Plugin][]string{}
	for _, p := range plugins {
		snk := startLive(t, dsn, Config{Source: source.Config{Slot: slots[p], Plugin: p}, Formatter: "CSV"})
		for _, r := range waitRecords(t, snk, want) {
			got[p] = append(got[p], normalisePlugin(r))
		}
	}
	baseRecords := strings.Join(got[base], "\n")
	for _, p := range plugins {
		if s := strings.Join(got[p], "\n"); s != baseRecords {
			t.Errorf("%s records differ from %s's:\n%s", p, base, lineDiff(baseRecords, s))
		}
	}
}

// normalisePlugin removes from a CSV record what docs/formats.md lets differ by
// plugin.
func normalisePlugin(r string) string {
	f := strings.SplitN(r, ",", 6)
	if len(f) < 6 {
		return r
	}
	f[3] = strings.ReplaceAll(strings.ReplaceAll(f[3], `"."`, "."), `"`, "")
	f[4] = strings.ToUpper(f[4])
	return strings.Join(f, ",")
}

func readGolden(t *testing.T, p decode.Plugin, v variant) string {
	t.Helper()
	b, err := os.ReadFile(goldenPath(p, v))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
