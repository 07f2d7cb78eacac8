package source

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

const dropsWarning = "wal2json does not send the updates and deletes of these tables"

// wal2json drops the updates and deletes of a table without a usable
// replica identity on the server; the start warns once, naming the
// published ones, and not the tables it sends.
func TestWal2JSONDropsWarned(t *testing.T) {
	testenv.RequirePlugin(t, "wal2json")
	const tables = "CREATE TABLE nokey (v int); CREATE TABLE nothing (id int PRIMARY KEY, v int); " +
		"ALTER TABLE nothing REPLICA IDENTITY NOTHING; CREATE TABLE keyed (id int PRIMARY KEY, v int); " +
		"CREATE TABLE full_ri (v int); ALTER TABLE full_ri REPLICA IDENTITY FULL; " +
		"INSERT INTO nothing VALUES (1, 1); INSERT INTO keyed VALUES (1, 1)"
	for _, tc := range []struct {
		name      string
		tables    string
		published func(schema, table string, keyed bool) bool
		want      []string // named; nil: no warning
	}{
		{"every table", tables, nil, []string{"public.nokey", "public.nothing"}},
		{"the published ones", tables, func(_, table string, _ bool) bool { return table != "nokey" }, []string{"public.nothing"}},
		{"keyed tables only", "CREATE TABLE keyed (id int PRIMARY KEY, v int)", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := testenv.Database(t)
			conn := testenv.Connect(t, dsn)
			exec(t, conn, tc.tables)
			var logs testenv.LogBuffer
			cfg := testConfig(t, dsn, "drops", decode.Wal2JSON)
			cfg.CreateSlot, cfg.Published = true, tc.published
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			r := start(t, cfg, true)
			waitActive(t, conn, "drops")
			if tc.want == nil {
				if strings.Contains(logs.String(), dropsWarning) {
					t.Fatalf("warned although wal2json sends every table's changes:\n%s", logs.String())
				}
				return
			}
			if n := strings.Count(logs.String(), dropsWarning); n != 1 {
				t.Fatalf("%d warnings, want 1; log:\n%s", n, logs.String())
			}
			line := logs.String()[strings.Index(logs.String(), dropsWarning):]
			line = line[:strings.IndexByte(line, '\n')]
			for _, w := range append(tc.want, fmt.Sprintf("count=%d", len(tc.want)), "REPLICA IDENTITY FULL") {
				if !strings.Contains(line, w) {
					t.Errorf("warning %q lacks %q", line, w)
				}
			}
			for _, fine := range []string{"public.keyed", "public.full_ri"} {
				if strings.Contains(line, fine) {
					t.Errorf("warning %q names %s, whose changes wal2json sends", line, fine)
				}
			}
			// What the warning is about: the server drops the update of
			// "nothing" and sends the later one of "keyed".
			exec(t, conn, "UPDATE nothing SET v = 2")
			exec(t, conn, "UPDATE keyed SET v = 2")
			deadline := time.After(10 * time.Second)
			for {
				select {
				case m := <-r.rec.msgs:
					if strings.Contains(m.data, `"action":"U"`) && strings.Contains(m.data, `"table":"nothing"`) {
						t.Fatalf("wal2json sent an update of a table under REPLICA IDENTITY NOTHING: %s", m.data)
					}
					if strings.Contains(m.data, `"action":"U"`) && strings.Contains(m.data, `"table":"keyed"`) {
						return
					}
				case <-deadline:
					t.Fatal("no update of keyed within 10s")
				}
			}
		})
	}
}

func TestNameList(t *testing.T) {
	var tables []tableIdentity
	for i := range 12 {
		tables = append(tables, tableIdentity{schema: "public", name: fmt.Sprintf("t%02d", i)})
	}
	tables[0].schema, tables[0].name = "S", "a b"
	for _, tc := range []struct {
		n    int
		want string
	}{
		{1, `"S"."a b"`},
		{2, `"S"."a b", public.t01`},
		{10, `"S"."a b", public.t01, public.t02, public.t03, public.t04, public.t05, public.t06, public.t07, public.t08, public.t09`},
		{12, `"S"."a b", public.t01, public.t02, public.t03, public.t04, public.t05, public.t06, public.t07, public.t08, public.t09 and 2 more`},
	} {
		if got := nameList(tables[:tc.n]); got != tc.want {
			t.Errorf("nameList(%d tables) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestCovered(t *testing.T) {
	part := tableIdentity{schema: "public", name: "p_1", within: [][2]string{{"public", "p_1"}, {"public", "p"}}}
	plain := tableIdentity{schema: "public", name: "x", within: [][2]string{{"public", "x"}}}
	all := []tableIdentity{part, plain}
	names := func(ts []tableIdentity) (out []string) {
		for _, t := range ts {
			out = append(out, t.name)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		pick func(schema, table string) bool
		want string
	}{
		{"all tables", nil, "p_1 x"},
		{"the parent brings its partition", func(_, t string) bool { return t == "p" }, "p_1"},
		{"the partition itself", func(_, t string) bool { return t == "p_1" }, "p_1"},
		{"a plain table", func(_, t string) bool { return t == "x" }, "x"},
		{"nothing", func(string, string) bool { return false }, ""},
	} {
		if got := strings.Join(names(covered(all, tc.pick)), " "); got != tc.want {
			t.Errorf("%s: covered = %q, want %q", tc.name, got, tc.want)
		}
	}
}
