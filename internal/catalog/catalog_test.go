package catalog

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

func TestPGLoadsKeysInKeyOrder(t *testing.T) {
	pg, _ := testPG(t, testenv.Database(t), nil,
		`CREATE TABLE single (id int PRIMARY KEY, v text)`,
		`CREATE TABLE composite (a int, b text, c int, PRIMARY KEY (c, a))`,
		`CREATE SCHEMA "Odd Schema"`,
		`CREATE TABLE "Odd Schema"."Weird ""name""" ("Key Col" uuid PRIMARY KEY)`,
		`CREATE TABLE nokey (v text)`,
		`CREATE TABLE dropped (x int, id int PRIMARY KEY)`,
		`ALTER TABLE dropped DROP COLUMN x`,
		// Dots in names: two tables, not one "a.b.c".
		`CREATE SCHEMA "a.b"`, `CREATE SCHEMA a`,
		`CREATE TABLE "a.b".c (x int PRIMARY KEY)`,
		`CREATE TABLE a."b.c" (y int PRIMARY KEY)`,
		// The replica identity index is the key, not the primary key.
		`CREATE TABLE by_index (id int PRIMARY KEY, u int NOT NULL, w int NOT NULL)`,
		`CREATE UNIQUE INDEX by_index_wu ON by_index (w, u)`,
		`ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_wu`,
		// Under FULL or NOTHING the primary key still is.
		`CREATE TABLE full_pk (id int PRIMARY KEY, v text)`,
		`ALTER TABLE full_pk REPLICA IDENTITY FULL`,
		`CREATE TABLE full_nokey (v text)`,
		`ALTER TABLE full_nokey REPLICA IDENTITY FULL`,
		`CREATE TABLE parted (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)`,
		`CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM ('2020-01-01') TO ('2030-01-01')`,
		`CREATE TEMP TABLE temporary (id int PRIMARY KEY)`,
	)
	keys, err := pg.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := Keys{
		{"public", "single"}:           PK("id"),
		{"public", "composite"}:        PK("c", "a"),
		{"Odd Schema", `Weird "name"`}: PK("Key Col"),
		{"public", "nokey"}:            {},
		{"public", "dropped"}:          PK("id"),
		{"a.b", "c"}:                   PK("x"),
		{"a", "b.c"}:                   PK("y"),
		{"public", "by_index"}:         {Columns: []string{"w", "u"}, Index: true},
		{"public", "full_pk"}:          {Columns: []string{"id"}, Full: true},
		{"public", "full_nokey"}:       {Full: true},
		{"public", "parted"}:           PK("id", "at"),
		{"public", "parted_1"}:         PK("id", "at"),
	}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys =\n%v\nwant\n%v", keys, want)
	}
}

// TestPGVersionChangesWithKeys: every statement that can change a key
// changes the version, and the one connection survives them all.
func TestPGVersionChangesWithKeys(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	pg, connects := testPG(t, dsn, nil,
		`CREATE TABLE t (id int PRIMARY KEY, k int NOT NULL, v text); CREATE UNIQUE INDEX t_kv ON t (k, id); CREATE SCHEMA s2`)
	last, err := pg.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`CREATE TABLE late (id int, v text)`,
		`ALTER TABLE late ADD PRIMARY KEY (id)`,
		`ALTER TABLE t DROP CONSTRAINT t_pkey, ADD PRIMARY KEY (k)`,
		`ALTER TABLE t REPLICA IDENTITY USING INDEX t_kv`,
		`ALTER TABLE t REPLICA IDENTITY DEFAULT`,
		`ALTER TABLE t RENAME TO t_old`,
		`DROP TABLE late`,
		`BEGIN; DROP TABLE t_old; CREATE TABLE t_old (uid text PRIMARY KEY); COMMIT`,
		// A key column renamed: test_decoding's changes name the new
		// column, and a second rename must be seen as the first was.
		`ALTER TABLE t_old RENAME COLUMN uid TO uid2`,
		`ALTER TABLE t_old RENAME COLUMN uid2 TO uid3`,
		`ALTER TABLE t_old SET SCHEMA s2`,
		`CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id)`,
		`CREATE TABLE part1 (id int PRIMARY KEY)`,
		`ALTER TABLE parted ATTACH PARTITION part1 FOR VALUES FROM (0) TO (10)`,
		`ALTER TABLE parted DETACH PARTITION part1`,
	} {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		v, err := pg.Version(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if v == last {
			t.Errorf("version %s unchanged after %s", v, sql)
		}
		last = v
	}
	// Statements that cannot change a key need not change it.
	for _, sql := range []string{`INSERT INTO s2.t_old VALUES ('a')`, `CREATE TEMP TABLE scratch (id int PRIMARY KEY)`, `ANALYZE s2.t_old`, `VACUUM s2.t_old`} {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if v, _ := pg.Version(t.Context()); v != last {
			t.Errorf("version changed by %s", sql)
		}
	}
	if *connects != 1 {
		t.Errorf("%d connections, want 1", *connects)
	}
}

// source is a Source whose keys and version a test sets.
type source struct {
	mu       sync.Mutex
	keys     Keys
	version  string
	loads    int
	versions int // version reads
	fail     error
}

func (s *source) Load(context.Context) (Keys, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	s.loads++
	return s.keys, nil
}

func (s *source) Version(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.versions++
	return s.version, s.fail
}

func (s *source) set(keys Keys, version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys, s.version = keys, version
}

func (s *source) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads
}

func newCache(t *testing.T, src *source) *Cache {
	t.Helper()
	c := New(src, nil)
	c.minGap = 0
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLookup(t *testing.T) {
	ctx := context.Background()
	src := &source{keys: Keys{{"public", "a"}: PK("id"), {"public", "nokey"}: {}}, version: "1"}
	c := newCache(t, src)

	if k, s, _ := c.Lookup(ctx, Name{"public", "a"}); s != Keyed || k.Columns[0] != "id" || src.count() != 1 {
		t.Fatalf("known table: %v %s after %d loads", k, s, src.count())
	}
	// A keyless table is known to be keyless: no reload, however often.
	for range 1000 {
		if _, s, _ := c.Lookup(ctx, Name{"public", "nokey"}); s != Keyless {
			t.Fatalf("nokey: %s", s)
		}
	}
	if src.count() != 1 {
		t.Fatalf("%d loads for a keyless table, want none after the first", src.count())
	}
	// A new table: the first lookup reloads and finds it.
	src.set(Keys{{"public", "a"}: PK("id"), {"public", "b"}: PK("x", "y")}, "2")
	if k, s, _ := c.Lookup(ctx, Name{"public", "b"}); s != Keyed || len(k.Columns) != 2 || src.count() != 2 {
		t.Fatalf("new table: %v %s after %d loads", k, s, src.count())
	}
	// A name no table has (renamed or dropped): one reload, then Unknown
	// without reloads, alternating with another such name.
	for i := range 1000 {
		for _, n := range []Name{{"public", "gone"}, {"public", "also_gone"}} {
			if _, s, _ := c.Lookup(ctx, n); s != Unknown {
				t.Fatalf("lookup %d of %s: %s", i, n, s)
			}
		}
	}
	if src.count() != 4 {
		t.Fatalf("%d loads, want 4: one per unknown name", src.count())
	}
	// A later load that finds the name ends its unknown state.
	src.set(Keys{{"public", "gone"}: PK("id")}, "3")
	if changed, err := c.Check(ctx); !changed || err != nil {
		t.Fatalf("Check = %t, %v", changed, err)
	}
	if _, s, _ := c.Lookup(ctx, Name{"public", "gone"}); s != Keyed {
		t.Fatalf("gone after it came back: %s", s)
	}
}

// "a.b".c and a."b.c" are two tables with two keys.
func TestDottedNamesAreDistinct(t *testing.T) {
	src := &source{keys: Keys{{"a.b", "c"}: PK("x"), {"a", "b.c"}: PK("y")}}
	c := newCache(t, src)
	for n, want := range map[Name]string{{"a.b", "c"}: "x", {"a", "b.c"}: "y"} {
		if k, _, _ := c.Lookup(context.Background(), n); len(k.Columns) != 1 || k.Columns[0] != want {
			t.Errorf("%q.%q: key %v, want %s", n.Schema, n.Table, k.Columns, want)
		}
	}
}

func TestCheckReloadsOnlyWhenTheVersionChanges(t *testing.T) {
	ctx := context.Background()
	src := &source{keys: Keys{{"public", "t"}: PK("id")}, version: "1"}
	c := newCache(t, src)
	for range 5 {
		if changed, err := c.Check(ctx); changed || err != nil {
			t.Fatalf("Check of an unchanged catalog = %t, %v", changed, err)
		}
	}
	src.set(Keys{{"public", "t"}: PK("k")}, "2")
	if changed, err := c.Check(ctx); !changed || err != nil {
		t.Fatalf("Check of a changed catalog = %t, %v", changed, err)
	}
	if k, _, _ := c.Lookup(ctx, Name{"public", "t"}); k.Columns[0] != "k" {
		t.Fatalf("key after the check: %v", k.Columns)
	}
	if src.count() != 2 || c.Checks() != 6 {
		t.Fatalf("%d loads and %d checks, want 2 and 6", src.count(), c.Checks())
	}
	// One read of the version per check, and one for the first load: a
	// check that reloads does not read it again.
	if src.versions != 7 {
		t.Fatalf("%d reads of the version, want 7", src.versions)
	}
}

func TestRecheckReloadsOncePerKey(t *testing.T) {
	ctx := context.Background()
	n := Name{"public", "rc"}
	src := &source{keys: Keys{n: PK("id")}}
	c := newCache(t, src)
	src.set(Keys{n: PK("uid")}, "")
	if k, s, _ := c.Recheck(ctx, n); s != Keyed || k.Columns[0] != "uid" {
		t.Fatalf("after recheck: %v %s", k, s)
	}
	// The same contradiction again (a lasting one): no more reloads.
	for range 100 {
		_, _, _ = c.Recheck(ctx, n)
	}
	if src.count() != 2 {
		t.Fatalf("%d loads, want 2", src.count())
	}
}

func TestLoadsAreSpacedAndShared(t *testing.T) {
	ctx := context.Background()
	src := &source{keys: Keys{}}
	c := New(src, nil)
	c.minGap = 200 * time.Millisecond
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, name := range []string{"x", "y", "z"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, _ = c.Lookup(ctx, Name{"public", name})
		}()
	}
	wg.Wait()
	// The three concurrent misses wait for the gap, then share loads.
	if elapsed := time.Since(start); elapsed < 150*time.Millisecond {
		t.Fatalf("a reload came %s after the last, want about 200ms", elapsed)
	}
	if n := src.count(); n < 2 || n > 4 {
		t.Fatalf("%d loads", n)
	}
}

func TestFailedLoadKeepsOldKeys(t *testing.T) {
	ctx := context.Background()
	src := &source{keys: Keys{{"public", "a"}: PK("id")}}
	c := newCache(t, src)
	src.fail = errors.New("db down")
	if err := c.Refresh(ctx); err == nil {
		t.Fatal("want the source's error")
	}
	if _, s, _ := c.Lookup(ctx, Name{"public", "a"}); s != Keyed {
		t.Fatal("old keys lost after a failed refresh")
	}
	if _, _, err := c.Lookup(ctx, Name{"public", "b"}); err == nil {
		t.Fatal("lookup of an unknown table must report the failed load")
	}
	// Not marked unknown: once the source is back, the name is looked for.
	src.fail = nil
	src.set(Keys{{"public", "b"}: PK("id")}, "")
	if _, s, _ := c.Lookup(ctx, Name{"public", "b"}); s != Keyed {
		t.Fatalf("after the outage: %s", s)
	}
}

func TestWatchChecksRefreshesAndHUP(t *testing.T) {
	src := &source{keys: Keys{}, version: "1"}
	c := newCache(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan struct{})
	done := make(chan error)
	go func() { done <- c.Watch(ctx, time.Hour, 10*time.Millisecond, hup) }()
	waitFor(t, "checks", func() bool { return c.Checks() >= 3 })
	if src.count() != 1 {
		t.Fatalf("%d loads while the version stayed", src.count())
	}
	src.set(Keys{{"public", "new"}: PK("id")}, "2")
	waitFor(t, "a reload after the version changed", func() bool { return src.count() == 2 })
	hup <- struct{}{}
	waitFor(t, "a reload on SIGHUP", func() bool { return src.count() == 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = c.Watch(ctx, 20*time.Millisecond, 0, nil) }()
	waitFor(t, "scheduled refreshes", func() bool { return src.count() >= 5 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A connection the server ended while it sat idle costs a reconnect, not
// a failed check.
func TestPGReconnectsAfterTheServerEndedItsConnection(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	pg, connects := testPG(t, dsn, func(cfg *pgx.ConnConfig) { cfg.RuntimeParams["application_name"] = "pg2kinesis-catalog-test" })
	if _, err := pg.Version(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'pg2kinesis-catalog-test' AND datname = current_database()`); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.Load(t.Context()); err != nil {
		t.Fatalf("Load after the server ended the connection: %v", err)
	}
	if *connects != 2 {
		t.Fatalf("%d connections, want 2", *connects)
	}
}

// blockingSource is a source whose first Load waits for release, and
// returns the keys the source had when that load began.
type blockingSource struct {
	source
	began, release chan struct{}
	once           sync.Once
}

func (s *blockingSource) Load(ctx context.Context) (Keys, error) {
	s.mu.Lock()
	keys := s.keys
	s.loads++
	s.mu.Unlock()
	s.once.Do(func() { close(s.began); <-s.release })
	return keys, nil
}

// A load that was already running when a lookup began read the catalog
// before the lookup's table may have existed: the lookup must not take it
// as an answer and call the table unknown.
func TestLookupDoesNotTrustALoadThatBeganBeforeIt(t *testing.T) {
	ctx := context.Background()
	n := Name{"public", "created"}
	src := &blockingSource{began: make(chan struct{}), release: make(chan struct{})}
	src.keys, src.version = Keys{}, "1"
	c := New(src, nil)
	c.minGap = 0
	checked := make(chan error, 1)
	go func() { _, err := c.Check(ctx); checked <- err }() // version "1" != "": loads
	<-src.began
	// The table is created and its change decoded while that load runs.
	src.set(Keys{n: PK("id")}, "2")
	seen := c.mark() // what Lookup notes as it begins
	close(src.release)
	if err := <-checked; err != nil {
		t.Fatal(err)
	}
	if err := c.loadSince(ctx, seen); err != nil {
		t.Fatal(err)
	}
	loads := src.count()
	// A table the cache knows is looked up without a load: what it holds.
	if k, s, _ := c.Lookup(context.Background(), n); s != Keyed || k.Columns[0] != "id" || src.count() != loads {
		t.Fatalf("a table created during a running load: %v %s after %d loads, want keyed by id without another", k, s, src.count())
	}
}

func TestPGDomainsResolveToTheirBuiltInType(t *testing.T) {
	pg, _ := testPG(t, testenv.Database(t), nil,
		`CREATE DOMAIN posint AS integer CHECK (VALUE > 0)`,
		`CREATE DOMAIN small AS posint CHECK (VALUE < 10)`,
		`CREATE SCHEMA "Odd"`,
		`CREATE DOMAIN "Odd"."Money" AS numeric(12,2)`,
	)
	c := New(pg, nil)
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"posint": "integer", "public.posint": "integer", "small": "integer", `"Odd"."Money"`: "numeric",
	} {
		if got, ok := c.BaseType(name); !ok || got != want {
			t.Errorf("BaseType(%q) = %q, %t; want %q", name, got, ok, want)
		}
	}
	if _, ok := c.BaseType("integer"); ok {
		t.Error("a built-in type taken for a domain")
	}
}

// testPG runs setup on the database of dsn and returns a PG reading it,
// closed when the test ends, and how many connections it opened. edit,
// if not nil, adjusts the connection settings first.
func testPG(t *testing.T, dsn string, edit func(*pgx.ConnConfig), setup ...string) (*PG, *int) {
	t.Helper()
	conn := testenv.Connect(t, dsn)
	for _, sql := range setup {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
	}
	connects := 0
	pg := NewPG(func(ctx context.Context) (*pgx.Conn, error) { connects++; return pgx.ConnectConfig(ctx, cfg) })
	t.Cleanup(pg.Close)
	return pg, &connects
}
