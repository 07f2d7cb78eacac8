package pipeline

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/metrics"
	"github.com/pg2kinesis/pg2kinesis/internal/source"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// The tests of this file run a schema that moves under each plugin, with
// JSON records and --partition-key pk, and check the key of every change.

var keyPlugins = []decode.Plugin{decode.TestDecoding, decode.Wal2JSON, decode.PGOutput}

// keysRun is one pipeline on a database of its own.
type keysRun struct {
	t       *testing.T
	plugin  decode.Plugin
	dsn     string
	slot    string
	logs    *testenv.LogBuffer
	metrics *metrics.Metrics
	snk     *captureSink
	stop    func()
}

func newKeysRun(t *testing.T, p decode.Plugin, setup ...string) *keysRun {
	t.Helper()
	testenv.RequirePlugin(t, p.String())
	r := &keysRun{t: t, plugin: p, dsn: testenv.Database(t), slot: testenv.Name(t), snk: &captureSink{}}
	r.exec(setup...)
	return r
}

func (r *keysRun) start() {
	r.t.Helper()
	r.logs, r.metrics = &testenv.LogBuffer{}, metrics.New("", "")
	_, r.stop = startLiveStop(r.t, r.dsn, Config{
		Source:    source.Config{Slot: r.slot, Plugin: r.plugin, CreateSlot: true},
		Formatter: "JSON", PartitionKey: "pk", PKCheckInterval: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(r.logs, nil)), Metrics: r.metrics,
	}, r.snk)
	// Streaming, not just holding the slot (as it does while creating it):
	// a stop before would keep the slot but test nothing.
	r.waitCounter("pg2kinesis_up", nil, 1)
}

func (r *keysRun) exec(sqls ...string) {
	r.t.Helper()
	conn := testenv.Connect(r.t, r.dsn)
	for _, sql := range sqls {
		if _, err := conn.Exec(r.t.Context(), sql); err != nil {
			r.t.Fatalf("%s: %v", sql, err)
		}
	}
}

// record is what the tests read of a JSON record.
type record struct {
	Op     string         `json:"op"`
	Schema string         `json:"schema"`
	Table  string         `json:"table"`
	PK     map[string]any `json:"pk"`
	After  map[string]any `json:"after"`
	Before map[string]any `json:"before"`
	// PartitionKey is the Kinesis partition key the record was put with.
	PartitionKey string `json:"-"`
}

func (c record) String() string {
	return fmt.Sprintf("%s %s.%s pk=%v partition=%q", c.Op, c.Schema, c.Table, c.PK, c.PartitionKey)
}

// wait waits for n records of table (every table: ""), and a moment for
// records that should not come, and returns them.
func (r *keysRun) wait(table string, n int) []record {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := r.records(table)
		if len(got) >= n {
			time.Sleep(300 * time.Millisecond)
			return r.records(table)
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d of %d records of %q after 30s: %v\nlog:\n%s", len(got), n, table, got, r.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *keysRun) records(table string) []record {
	r.t.Helper()
	r.snk.mu.Lock()
	defer r.snk.mu.Unlock()
	var out []record
	for i, l := range r.snk.lines {
		var c record
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			r.t.Fatalf("record %q: %v", l, err)
		}
		c.PartitionKey = r.snk.pks[i]
		if table == "" || c.Table == table {
			out = append(out, c)
		}
	}
	return out
}

// counter sums a counter (or gauge) of the run's metrics whose labels
// include want.
func (r *keysRun) counter(name string, want map[string]string) float64 {
	r.t.Helper()
	families, err := r.metrics.Registry.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, want) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// waitCounter waits up to 30 s for a counter to reach n.
func (r *keysRun) waitCounter(name string, labels map[string]string, n float64) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.counter(name, labels) < n {
		if time.Now().After(deadline) {
			r.t.Fatalf("%s%v = %v after 30s, want %v", name, labels, r.counter(name, labels), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// checkKeys checks that the records have the keys of want, in order: a
// column=value list per record ("" for none), and that the partition key
// is the table and that key.
func checkKeys(t *testing.T, got []record, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d: %v", len(got), len(want), got)
	}
	for i, c := range got {
		var parts, values []string
		for k, v := range c.PK {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
			values = append(values, fmt.Sprint(v))
		}
		slices.Sort(parts)
		if s := strings.Join(parts, ","); s != want[i] {
			t.Errorf("record %d (%s): key %q, want %q", i, c, s, want[i])
		}
		if wantPart := c.Schema + "." + c.Table + ":" + strings.Join(values, ","); len(values) == 1 && c.PartitionKey != wantPart {
			t.Errorf("record %d (%s): partition key %q, want %q", i, c, c.PartitionKey, wantPart)
		}
	}
}

// The reported repro: a new table swapped in for an old one by renames,
// the old one dropped, in separate transactions. Every row of the new
// table is published; wal2json and pgoutput key it as of the change.
// Stopped while the DDL happens, test_decoding finds the table gone: the
// changes are published without a key, counted and warned of.
func TestLiveTableSwapPublishesEveryChange(t *testing.T) {
	swap := []string{
		"CREATE TABLE orders_new (id int PRIMARY KEY, v text)",
		"INSERT INTO orders_new SELECT g, 'x' FROM generate_series(1, 1000) g",
		"ALTER TABLE orders RENAME TO orders_old",
		"ALTER TABLE orders_new RENAME TO orders",
		"DROP TABLE orders_old",
	}
	for _, p := range keyPlugins {
		for _, restarted := range []bool{false, true} {
			name := p.String() + "/running"
			if restarted {
				name = p.String() + "/restarted"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				r := newKeysRun(t, p, "CREATE TABLE orders (id int PRIMARY KEY, v text)")
				r.start()
				if restarted {
					r.stop()
				}
				r.exec(swap...)
				if restarted {
					r.start()
				}
				got := r.wait("orders_new", 1000)
				if len(got) != 1000 {
					t.Fatalf("%d records of orders_new, want 1000", len(got))
				}
				seen := map[float64]bool{}
				for _, c := range got {
					id, ok := c.PK["id"].(float64)
					switch {
					case ok:
						seen[id] = true
					case p != decode.TestDecoding || c.PK != nil:
						t.Fatalf("record %s: want the key id", c)
					}
				}
				if p != decode.TestDecoding && len(seen) != 1000 {
					t.Fatalf("%d distinct keys, want 1000", len(seen))
				}
				if p == decode.TestDecoding && restarted {
					if n := r.counter("pg2kinesis_changes_unknown_table_total", map[string]string{"table": "public.orders_new"}); n != 1000 {
						t.Errorf("changes_unknown_table_total = %v, want 1000", n)
					}
					if !strings.Contains(r.logs.String(), "no table of this name any more") {
						t.Errorf("no warning of the unknown table:\n%s", r.logs)
					}
				}
				if strings.Contains(r.logs.String(), "no primary key") {
					t.Errorf("a false warning of a table without a key:\n%s", r.logs)
				}
			})
		}
	}
}

// A primary key added after a table's first change keys its later
// changes: within the check interval with test_decoding, at once with the
// others.
func TestLiveKeyAddedLater(t *testing.T) {
	for _, p := range keyPlugins {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			r := newKeysRun(t, p)
			r.start()
			r.exec("CREATE TABLE late (id int, v text)", "INSERT INTO late VALUES (1, 'a')")
			// Read before the key exists.
			r.waitCounter("pg2kinesis_changes_read_total", map[string]string{"table": "public.late"}, 1)
			r.exec("ALTER TABLE late ADD PRIMARY KEY (id)")
			if p == decode.TestDecoding {
				time.Sleep(time.Second) // test_decoding keys by today's catalog: let a check see the key
			}
			r.exec("INSERT INTO late VALUES (2, 'b')", "UPDATE late SET v = 'c' WHERE id = 2", "DELETE FROM late WHERE id = 2",
				"CREATE TABLE done (id int PRIMARY KEY)", "INSERT INTO done VALUES (1)")
			r.wait("done", 1)
			got := r.records("late")
			if len(got) == 4 { // the first insert: JSON publishes it keyless, or keyed if the catalog was read after the key came
				if got[0].PK != nil {
					checkKeys(t, got[:1], "id=1")
				}
				got = got[1:]
			}
			checkKeys(t, got, "id=2", "id=2", "id=2")
		})
	}
}

// A table dropped and created again with another key, and a primary key
// moved to another column: the later changes carry the new key.
func TestLiveKeyChanged(t *testing.T) {
	for _, p := range keyPlugins {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			r := newKeysRun(t, p, "CREATE TABLE rc (id int PRIMARY KEY, v text)", "CREATE TABLE t (id int PRIMARY KEY, k int NOT NULL, v text)")
			r.start()
			r.exec("INSERT INTO rc VALUES (1, 'a')", "INSERT INTO t VALUES (1, 10, 'a')")
			r.wait("t", 1)
			// No wait: the new rc's changes lack the cached key column,
			// which makes test_decoding's catalog reload.
			r.exec("DROP TABLE rc", "CREATE TABLE rc (uid text PRIMARY KEY, v text)",
				"INSERT INTO rc VALUES ('u1', 'b')", "UPDATE rc SET v = 'c'", "DELETE FROM rc")
			checkKeys(t, r.wait("rc", 4), "id=1", "uid=u1", "uid=u1", "uid=u1")

			r.exec("ALTER TABLE t DROP CONSTRAINT t_pkey, ADD PRIMARY KEY (k)")
			if p == decode.TestDecoding {
				time.Sleep(time.Second) // the id column is still there: only a check sees the change
			}
			r.exec("INSERT INTO t VALUES (2, 20, 'b')", "UPDATE t SET v = 'c' WHERE k = 20", "DELETE FROM t WHERE k = 20")
			checkKeys(t, r.wait("t", 4), "id=1", "k=20", "k=20", "k=20")
		})
	}
}

// Under REPLICA IDENTITY USING INDEX a delete carries only the index's
// columns: every plugin keys every change of the table by the index, so
// that all changes of a row go to one shard with --partition-key pk.
func TestLiveReplicaIdentityIndexKeys(t *testing.T) {
	for _, p := range keyPlugins {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			r := newKeysRun(t, p, "CREATE TABLE ui (id int PRIMARY KEY, u int NOT NULL, v text)",
				"CREATE UNIQUE INDEX ui_u ON ui (u)", "ALTER TABLE ui REPLICA IDENTITY USING INDEX ui_u")
			r.start()
			r.exec("INSERT INTO ui VALUES (1, 10, 'a')", "UPDATE ui SET v = 'b'", "UPDATE ui SET u = 11", "DELETE FROM ui")
			checkKeys(t, r.wait("ui", 4), "u=10", "u=10", "u=11", "u=11")
		})
	}
}

// "a.b".c and a."b.c" are two tables with their own keys.
func TestLiveDottedNames(t *testing.T) {
	for _, p := range keyPlugins {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			r := newKeysRun(t, p, `CREATE SCHEMA "a.b"`, `CREATE SCHEMA a`,
				`CREATE TABLE "a.b".c (x int PRIMARY KEY)`, `CREATE TABLE a."b.c" (y int PRIMARY KEY)`)
			r.start()
			r.exec(`INSERT INTO "a.b".c VALUES (1)`, `INSERT INTO a."b.c" VALUES (2)`)
			got := r.wait("", 2)
			checkKeys(t, got[:1], "x=1")
			checkKeys(t, got[1:], "y=2")
		})
	}
}

// Two tables without a key, written alternately, cost no catalog reload
// per change: at most two in all, however many changes.
func TestLiveKeylessTablesDoNotReloadTheCatalog(t *testing.T) {
	for _, p := range keyPlugins {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			r := newKeysRun(t, p)
			r.start()
			start := r.counter("pg2kinesis_pk_cache_refreshes_total", nil)
			r.exec("CREATE TABLE k1 (v int); CREATE TABLE k2 (v int)")
			var b strings.Builder
			for i := range 4000 {
				fmt.Fprintf(&b, "INSERT INTO k%d VALUES (%d);", i%2+1, i)
			}
			began := time.Now()
			r.exec(b.String(), "CREATE TABLE done (id int PRIMARY KEY)", "INSERT INTO done VALUES (1)")
			r.wait("done", 1)
			t.Logf("%s: 4,000 keyless changes drained in %s", p, time.Since(began).Round(time.Millisecond))
			// JSON publishes keyless tables, with "pk": null.
			if n := r.counter("pg2kinesis_changes_published_total", map[string]string{"table": "public.k1"}) +
				r.counter("pg2kinesis_changes_published_total", map[string]string{"table": "public.k2"}); n != 4000 {
				t.Errorf("%v changes of the keyless tables published, want 4000", n)
			}
			for _, c := range append(r.records("k1"), r.records("k2")...) {
				if c.PK != nil {
					t.Fatalf("record %s of a keyless table: want pk null", c)
				}
			}
			if n := r.counter("pg2kinesis_pk_cache_refreshes_total", nil) - start; n > 2 {
				t.Errorf("%v catalog reloads for 4,000 changes of two keyless tables, want at most 2", n)
			}
		})
	}
}

// Keyless tables under REPLICA IDENTITY FULL (what pg2kinesis recommends
// for them) send their whole old row with every update and delete: that
// is no sign of a new key, and costs no reload, nor the wait between
// reloads, however many such tables there are.
func TestLiveKeylessFullTablesDoNotReloadTheCatalog(t *testing.T) {
	const tables = 5
	var setup, work []string
	for i := range tables {
		setup = append(setup, fmt.Sprintf("CREATE TABLE f%d (v int)", i), fmt.Sprintf("ALTER TABLE f%d REPLICA IDENTITY FULL", i))
		work = append(work, fmt.Sprintf("INSERT INTO f%d VALUES (1)", i), fmt.Sprintf("UPDATE f%d SET v = 2", i), fmt.Sprintf("DELETE FROM f%d", i))
	}
	setup = append(setup, "CREATE TABLE done (id int PRIMARY KEY)")
	for _, p := range keyPlugins {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			r := newKeysRun(t, p, setup...)
			r.start()
			start := r.counter("pg2kinesis_pk_cache_refreshes_total", nil)
			r.exec(append(slices.Clip(work), "INSERT INTO done VALUES (1)")...) // work is shared by the parallel subtests
			r.wait("done", 1)
			// JSON publishes keyless tables: every change, and the one of done.
			if n := r.counter("pg2kinesis_changes_published_total", nil); n != 3*tables+1 {
				t.Errorf("%v changes published, want %d", n, 3*tables+1)
			}
			if n := r.counter("pg2kinesis_pk_cache_refreshes_total", nil) - start; n != 0 {
				t.Errorf("%v catalog reloads for the updates and deletes of %d keyless tables under FULL, want none", n, tables)
			}
		})
	}
}

// A key column renamed, then renamed again: the changes after each rename
// carry the column's new name (test_decoding: from the next check on).
func TestLiveKeyColumnRenamed(t *testing.T) {
	for _, p := range keyPlugins {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			r := newKeysRun(t, p, "CREATE TABLE rn (id int PRIMARY KEY, v text)")
			r.start()
			for i, rename := range []string{"id TO a", "a TO b"} {
				r.exec("ALTER TABLE rn RENAME COLUMN " + rename)
				if p == decode.TestDecoding {
					time.Sleep(time.Second) // a column rename is seen by the next check
				}
				r.exec(fmt.Sprintf("INSERT INTO rn VALUES (%d, 'x')", i+1))
				// Read before the next rename: test_decoding keys a
				// change read later by the catalog as it is then.
				r.wait("rn", i+1)
			}
			checkKeys(t, r.records("rn"), "a=1", "b=2")
		})
	}
}
