package snapshot

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// keyText is a row's key as the rows' own values print it, comma-joined.
func keyText(t *testing.T, ev decode.Event, key []string) string {
	t.Helper()
	parts := make([]string, len(key))
	for i, k := range key {
		j := slices.IndexFunc(ev.New, func(c decode.Column) bool { return c.Name == k })
		if j < 0 {
			t.Fatalf("key column %q not in the row", k)
		}
		parts[i] = string(ev.New[j].Value)
	}
	return strings.Join(parts, ",")
}

// dbKeys is every row's key in key order, as the server sorts and prints it.
func dbKeys(t *testing.T, conn *pgx.Conn, table string, key []string) []string {
	t.Helper()
	cols := make([]string, len(key))
	for i, k := range key {
		cols[i] = pgx.Identifier{k}.Sanitize()
	}
	list := strings.Join(cols, ", ")
	rows, err := conn.Query(ctx(t), "SELECT concat_ws(',', "+list+") FROM "+table+" ORDER BY "+list)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Every row exactly once, in key order, whatever the key's type, chunk
// after chunk; the awkward names quoted everywhere.
func TestLiveKeysetChunks(t *testing.T) {
	conn, connect := liveDB(t,
		`CREATE SCHEMA "odd ""schema"" name"`,
		`CREATE TYPE pair AS (a text, b int)`,
		`CREATE TABLE "odd ""schema"" name"."Text Key's ""T""" ("the key" text PRIMARY KEY, v int)`,
		`INSERT INTO "odd ""schema"" name"."Text Key's ""T""" SELECT
			CASE i % 4 WHEN 0 THEN 'k ' || i WHEN 1 THEN 'it''s "' || i || '"' WHEN 2 THEN E'new\nline ' || i ELSE 'ü, ' || i END, i
			FROM generate_series(1, 3000) i`,
		`CREATE TABLE uuids (id uuid PRIMARY KEY)`,
		`INSERT INTO uuids SELECT md5(i::text)::uuid FROM generate_series(1, 2000) i`,
		`CREATE TABLE composite (a text, b int, c text, PRIMARY KEY (a, b))`,
		`INSERT INTO composite SELECT 'g ' || (i % 7), i, 'x' FROM generate_series(1, 2500) i`,
		`CREATE TABLE nums (n numeric PRIMARY KEY)`,
		`INSERT INTO nums SELECT (i - 1000) / 7.0 FROM generate_series(1, 2000) i`,
		`INSERT INTO nums VALUES ('NaN')`,
		`CREATE TABLE times (at timestamptz PRIMARY KEY, d date)`,
		`INSERT INTO times SELECT '2024-01-01'::timestamptz + i * interval '1 minute 0.001 second', NULL FROM generate_series(1, 1500) i`,
		`CREATE TABLE floats (f float8 PRIMARY KEY, r real NOT NULL)`,
		`INSERT INTO floats SELECT i / 3.0 + 1e-9 * i, 0 FROM generate_series(-700, 700) i`,
		`INSERT INTO floats VALUES ('Infinity', 0), ('-Infinity', 0), ('NaN', 0), (1e300, 0), (5e-324, 0)`,
		`CREATE TABLE reals (r real PRIMARY KEY)`,
		`INSERT INTO reals SELECT i / 7.0 FROM generate_series(1, 1000) i`,
		`CREATE TABLE rowtyped (p pair PRIMARY KEY)`,
		`INSERT INTO rowtyped SELECT ROW('a "' || (i % 5) || '", x', i)::pair FROM generate_series(1, 1200) i`,
		`CREATE TABLE by_index (id int PRIMARY KEY, a text NOT NULL, b int NOT NULL)`,
		`CREATE UNIQUE INDEX by_index_ba ON by_index (b, a)`,
		`ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_ba`,
		`INSERT INTO by_index SELECT i, 'a' || (3000 - i), i % 10 FROM generate_series(1, 2000) i`,
		// Named as the sample's own columns were (a row number, once
		// "pg2kinesis row"), or are (k1, ..., n).
		`CREATE TABLE clash ("pg2kinesis row" int, n int, k1 text, PRIMARY KEY ("pg2kinesis row", n, k1))`,
		`INSERT INTO clash SELECT i / 10, i % 10, 'x' || i FROM generate_series(1, 2000) i`,
	)
	all := keys(t, connect)
	for _, tc := range []struct {
		name catalog.Name
		n    int
	}{
		{catalog.Name{Schema: `odd "schema" name`, Table: `Text Key's "T"`}, 7},
		{catalog.Name{Schema: "public", Table: "uuids"}, 13},
		{catalog.Name{Schema: "public", Table: "composite"}, 10},
		{catalog.Name{Schema: "public", Table: "nums"}, 9},
		{catalog.Name{Schema: "public", Table: "times"}, 100},
		{catalog.Name{Schema: "public", Table: "floats"}, 9},
		{catalog.Name{Schema: "public", Table: "reals"}, 9},
		{catalog.Name{Schema: "public", Table: "rowtyped"}, 11},
		{catalog.Name{Schema: "public", Table: "by_index"}, 1},
		{catalog.Name{Schema: "public", Table: "clash"}, 9},
	} {
		t.Run(tc.name.Table, func(t *testing.T) {
			key := all[tc.name].Columns
			if len(key) == 0 {
				t.Fatalf("%s has no key in the catalog", tc.name)
			}
			for _, p := range decode.Plugins {
				tb, err := Describe(ctx(t), conn, tc.name, key, p)
				if err != nil {
					t.Fatal(err)
				}
				rows, chunks := readAll(t, tb, conn, tc.n)
				want := dbKeys(t, conn, pgx.Identifier{tc.name.Schema, tc.name.Table}.Sanitize(), key)
				if p == decode.Wal2JSON {
					// wal2json prints NaN and ±Infinity as null, in WAL
					// and snapshot alike.
					want = slices.Clone(want)
					for i, k := range want {
						if k == "NaN" || k == "Infinity" || k == "-Infinity" {
							want[i] = ""
						}
					}
				}
				got := make([]string, len(rows))
				for i, r := range rows {
					got[i] = keyText(t, r, key)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s: %d rows in %d chunks, not every row once in key order (want %d)", p, len(got), chunks, len(want))
				}
				if min := len(want)/tc.n + 1; chunks < min {
					t.Errorf("%s: %d chunks, want at least %d", p, chunks, min)
				}
				if p != decode.TestDecoding {
					continue
				}
				// Cut into spans by a sample of its keys, read span by
				// span (after, upto]: every row once, in key order; then
				// the same after the middle bound (a worker samples what
				// is left after its first chunk).
				bounds, got := readBySample(t, tb, conn, key, nil, tc.n, 2)
				if !slices.Equal(got, want) {
					t.Fatalf("spans cut at %q: %d rows, not every row once in key order (want %d)", bounds, len(got), len(want))
				}
				after := bounds[len(bounds)/2]
				_, rest := readBySample(t, tb, conn, key, after, tc.n, 0)
				upto := len(readSpanKeys(t, tb, conn, key, nil, after, tc.n))
				if !slices.Equal(rest, want[upto:]) {
					t.Fatalf("spans after %q: %d rows, not every row after it once in key order (want %d)", after, len(rest), len(want)-upto)
				}
			}
		})
	}
}

// A keyless table is read by block ranges: every row once over several
// chunks, with holes left by deletes, before and after ANALYZE.
func TestLiveKeylessChunks(t *testing.T) {
	conn, connect := liveDB(t,
		`CREATE TABLE heap (i int, pad text)`,
		`INSERT INTO heap SELECT i, repeat('x', i % 200) FROM generate_series(1, 5000) i`,
		`DELETE FROM heap WHERE i % 3 = 0 OR i BETWEEN 2000 AND 2600`,
	)
	name := catalog.Name{Schema: "public", Table: "heap"}
	if k := keys(t, connect)[name]; len(k.Columns) != 0 {
		t.Fatalf("heap has a key: %v", k)
	}
	var want []string
	if err := conn.QueryRow(ctx(t), "SELECT array_agg(i::text ORDER BY i) FROM heap").Scan(&want); err != nil {
		t.Fatal(err)
	}
	for _, analyzed := range []bool{false, true} {
		if analyzed {
			exec(t, conn, "ANALYZE heap")
		}
		for _, p := range decode.Plugins {
			tb, err := Describe(ctx(t), conn, name, nil, p)
			if err != nil {
				t.Fatal(err)
			}
			rows, chunks := readAll(t, tb, conn, 50)
			var got []string
			for _, r := range rows {
				got = append(got, keyText(t, r, []string{"i"}))
			}
			slices.SortFunc(got, func(a, b string) int {
				x, _ := strconv.Atoi(a)
				y, _ := strconv.Atoi(b)
				return x - y
			})
			if !slices.Equal(got, want) {
				t.Fatalf("%s (analyzed %t): %d rows in %d chunks, want each of %d once", p, analyzed, len(got), chunks, len(want))
			}
			if chunks < 3 {
				t.Errorf("%s (analyzed %t): %d chunks, want several", p, analyzed, chunks)
			}
		}
	}
}

func TestLiveEmptyTable(t *testing.T) {
	conn, _ := liveDB(t,
		`CREATE TABLE empty_keyed (id int PRIMARY KEY)`,
		`CREATE TABLE empty_keyless (x int)`,
		`CREATE TABLE emptied (x int)`,
		`INSERT INTO emptied SELECT generate_series(1, 1000)`,
		`DELETE FROM emptied`,
	)
	for _, tc := range []struct {
		table string
		key   []string
	}{{"empty_keyed", []string{"id"}}, {"empty_keyless", nil}, {"emptied", nil}} {
		for _, p := range decode.Plugins {
			tb, err := Describe(ctx(t), conn, catalog.Name{Schema: "public", Table: tc.table}, tc.key, p)
			if err != nil {
				t.Fatal(err)
			}
			rows, _ := readAll(t, tb, conn, 10)
			if len(rows) != 0 {
				t.Errorf("%s %s: %d rows, want none", tc.table, p, len(rows))
			}
		}
		if tc.table == "emptied" {
			continue // its blocks are still there, read empty
		}
		c, err := mustDescribe(t, conn, tc.table, tc.key).Read(ctx(t), conn, nil, Limit{Rows: 10})
		if err != nil || !c.Done || c.Rows.Len() != 0 {
			t.Errorf("%s: first read = %d rows, done %t, %v; want none, done", tc.table, c.Rows.Len(), c.Done, err)
		}
	}
}

func mustDescribe(t *testing.T, conn *pgx.Conn, table string, key []string) *Table {
	t.Helper()
	tb, err := Describe(ctx(t), conn, catalog.Name{Schema: "public", Table: table}, key, decode.TestDecoding)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// A table dropped between two chunks: the read fails naming it.
func TestLiveDroppedTable(t *testing.T) {
	conn, _ := liveDB(t,
		`CREATE TABLE "Gone Keyed" (id int PRIMARY KEY)`,
		`INSERT INTO "Gone Keyed" SELECT generate_series(1, 100)`,
		`CREATE TABLE "Gone Keyless" (x int)`,
		`INSERT INTO "Gone Keyless" SELECT generate_series(1, 100)`,
	)
	for _, tc := range []struct {
		table string
		key   []string
	}{{"Gone Keyed", []string{"id"}}, {"Gone Keyless", nil}} {
		tb := mustDescribe(t, conn, tc.table, tc.key)
		c, err := tb.Read(ctx(t), conn, nil, Limit{Rows: 10})
		if err != nil {
			t.Fatal(err)
		}
		exec(t, conn, "DROP TABLE "+pgx.Identifier{tc.table}.Sanitize())
		_, err = tb.Read(ctx(t), conn, c.Next, Limit{Rows: 10})
		var pgErr *pgconn.PgError
		if err == nil || !strings.Contains(err.Error(), "public."+tc.table) || !strings.Contains(err.Error(), "no longer exists") ||
			!errors.As(err, &pgErr) {
			t.Errorf("read of dropped %s: %v, want an error naming it", tc.table, err)
		}
		if _, err := tb.Estimate(ctx(t), conn); err == nil || !strings.Contains(err.Error(), tc.table) {
			t.Errorf("estimate of dropped %s: %v, want an error naming it", tc.table, err)
		}
		if _, err := Describe(ctx(t), conn, catalog.Name{Schema: "public", Table: tc.table}, tc.key, decode.Wal2JSON); err == nil ||
			!strings.Contains(err.Error(), tc.table) {
			t.Errorf("describe of dropped %s: %v, want an error naming it", tc.table, err)
		}
	}
}

// Estimate is the planner's row count: unknown until the table is
// analyzed or vacuumed, then its rows a page times its pages now.
func TestLiveEstimate(t *testing.T) {
	conn, _ := liveDB(t,
		`CREATE TABLE est (id int PRIMARY KEY)`,
		`INSERT INTO est SELECT generate_series(1, 1000)`,
	)
	tb := mustDescribe(t, conn, "est", []string{"id"})
	if n, err := tb.Estimate(ctx(t), conn); err != nil || n != -1 {
		t.Errorf("before ANALYZE: %d, %v; want -1", n, err)
	}
	exec(t, conn, "ANALYZE est")
	if n, err := tb.Estimate(ctx(t), conn); err != nil || n != 1000 {
		t.Errorf("after ANALYZE: %d, %v; want 1000", n, err)
	}
	// Loaded since: as many rows again on about as many pages again.
	exec(t, conn, "INSERT INTO est SELECT generate_series(1001, 2000)")
	if n, err := tb.Estimate(ctx(t), conn); err != nil || n < 1600 || n > 2400 {
		t.Errorf("after 1000 more rows: %d, %v; want about 2000", n, err)
	}
}

// A described Table is read by several connections at once.
func TestLiveConcurrentReads(t *testing.T) {
	conn, connect := liveDB(t,
		`CREATE TABLE shared (id int PRIMARY KEY, ok bool, v text)`,
		`INSERT INTO shared SELECT i, i % 2 = 0, 'v' || i FROM generate_series(1, 500) i`,
	)
	tb, err := Describe(ctx(t), conn, catalog.Name{Schema: "public", Table: "shared"}, []string{"id"}, decode.PGOutput)
	if err != nil {
		t.Fatal(err)
	}
	counts := make(chan int, 3)
	for range 3 {
		c, err := connect(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		go func() {
			n := 0
			var after []string
			for {
				ch, err := tb.Read(context.Background(), c, after, Limit{Rows: 17})
				if err != nil {
					t.Error(err)
					break
				}
				n += ch.Rows.Len()
				if ch.Done {
					break
				}
				after = ch.Next
			}
			counts <- n
		}()
	}
	for range 3 {
		if n := <-counts; n != 500 {
			t.Errorf("a reader read %d rows, want 500", n)
		}
	}
}

// Only ordinary tables: a partitioned table's changes come under its
// partitions' names.
func TestLiveDescribeRefusesPartitioned(t *testing.T) {
	conn, _ := liveDB(t,
		`CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id)`,
		`CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100)`,
	)
	_, err := Describe(ctx(t), conn, catalog.Name{Schema: "public", Table: "parted"}, []string{"id"}, decode.TestDecoding)
	if err == nil || !strings.Contains(err.Error(), "public.parted") {
		t.Errorf("describe a partitioned table: %v, want an error naming it", err)
	}
	if _, err := Describe(ctx(t), conn, catalog.Name{Schema: "public", Table: "parted_1"}, []string{"id"}, decode.TestDecoding); err != nil {
		t.Errorf("describe a partition: %v", err)
	}
}

// A chunk ends at the row whose text reaches the byte bound, before its
// row limit, and is not the last; read on from its cursor, the chunks
// still hold every row once, in key order.
func TestLiveChunkBoundedByBytes(t *testing.T) {
	conn, _ := liveDB(t,
		"CREATE TABLE wide (id int PRIMARY KEY, body text)",
		"INSERT INTO wide SELECT i, repeat('x', 1000) FROM generate_series(1, 50) i")
	tb := mustDescribe(t, conn, "wide", []string{"id"})
	var after []string
	var ids []string
	for chunks := 0; ; chunks++ {
		c, err := tb.Read(ctx(t), conn, after, Limit{Rows: 20, Bytes: 5000})
		if err != nil {
			t.Fatal(err)
		}
		// Each row's text is about 1 kB: the fifth reaches 5000 bytes.
		if n := c.Rows.Len(); !c.Done && n != 5 || c.Done && n > 5 {
			t.Fatalf("chunk %d: %d rows (%d bytes), done %t; want 5 rows a chunk", chunks, n, c.Rows.Size(), c.Done)
		}
		for _, ev := range events(t, c.Rows) {
			ids = append(ids, string(ev.New[0].Value))
		}
		if c.Done {
			break
		}
		if chunks > 20 {
			t.Fatal("no end")
		}
		after = c.Next
	}
	var want []string
	for i := 1; i <= 50; i++ {
		want = append(want, strconv.Itoa(i))
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("rows %v, want 1..50 once each", ids)
	}
}
