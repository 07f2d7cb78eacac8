package main

// Snapshot tests of keys: every kind of key, many tables, truncates,
// requests made again, and cursors over awkward keys.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// (5) Keys of every kind, and a table without one (JSON publishes it, read
// by ctid): each table snapshotted (initial_only), every row in the stream
// once, as the table holds it (to_json of the row), for each plugin.
func TestSnapshotKeys(t *testing.T) {
	tables := map[string][]string{
		"text_key": {
			"CREATE TABLE text_key (k text PRIMARY KEY, v int NOT NULL)",
			`INSERT INTO text_key SELECT 'key ' || i || ' it''s "quoted", \ ' || repeat(' ', i % 3), i FROM generate_series(1, 1500) i`,
			`INSERT INTO text_key VALUES (' ', -1), ('', -2), ('a,b', -3), ('{x}', -4), ('NULL', -5), ('é ü', -6), ('"', -7), ('''', -8)`,
		},
		"uuid_key": {
			"CREATE TABLE uuid_key (id uuid PRIMARY KEY, v int NOT NULL)",
			"INSERT INTO uuid_key SELECT md5(i::text)::uuid, i FROM generate_series(1, 1500) i",
		},
		"composite_key": {
			"CREATE TABLE composite_key (a text, b int, v text, PRIMARY KEY (a, b))",
			`INSERT INTO composite_key SELECT 'group ' || (i % 7) || ' "q" ''s', i, 'value ' || i FROM generate_series(1, 1500) i`,
			`INSERT INTO composite_key VALUES ('', 0, NULL), (' ', -1, ''), ('a,b', 2147483647, 'max')`,
		},
		"numeric_key": {
			"CREATE TABLE numeric_key (id numeric PRIMARY KEY, v int NOT NULL)",
			"INSERT INTO numeric_key SELECT (i - 750) / 7.0, i FROM generate_series(1, 1500) i",
			"INSERT INTO numeric_key VALUES (1e20, -1), (0.000001, -2), (-123456789.123456789, -3), (42.500, -4)",
		},
		"no_key": {
			"CREATE TABLE no_key (a int, b text)",
			"INSERT INTO no_key SELECT i % 500, 'dup ' || (i % 500) FROM generate_series(1, 1500) i", // each row three times
			"INSERT INTO no_key VALUES (NULL, NULL)",
		},
	}
	names := []string{"text_key", "uuid_key", "composite_key", "numeric_key", "no_key"}
	for _, plugin := range []string{"test_decoding", "wal2json", "pgoutput"} {
		t.Run(plugin, func(t *testing.T) {
			t.Parallel()
			r, d := snapshotOnce(t, plugin, tables, names, 200)
			for _, n := range names {
				want := map[string]int{}
				rows, err := r.conn.Query(context.Background(), "SELECT row_to_json(t)::text FROM "+n+" t")
				if err != nil {
					t.Fatal(err)
				}
				var row string
				total := 0
				if _, err := pgx.ForEachRow(rows, []any{&row}, func() error {
					want[canonical(t, []byte(row))]++
					total++
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				got := map[string]int{}
				for _, rec := range r.waitReads(t, n, total) {
					if rec.Op != "read" {
						t.Fatalf("a record that is not a read: %s", rec.data)
					}
					after := canonical(t, rec.After)
					got[after]++
					if n == "no_key" {
						if string(rec.PK) != "null" {
							t.Errorf("a row of a table without a key has pk %s: %s", rec.PK, rec.data)
						}
						continue
					}
					// The key is the row's key columns.
					var pk, full map[string]json.RawMessage
					if err := json.Unmarshal(rec.PK, &pk); err != nil || len(pk) == 0 {
						t.Fatalf("record without a key: %s", rec.data)
					}
					_ = json.Unmarshal(rec.After, &full)
					for c, v := range pk {
						if string(full[c]) != string(v) {
							t.Errorf("pk %s = %s, the row's %s: %s", c, v, full[c], rec.data)
						}
					}
				}
				bad := 0
				for row, w := range want {
					if got[row] != w {
						if bad++; bad <= 5 {
							t.Errorf("%s: row %s is %d times in the table, %d in the stream", n, row, w, got[row])
						}
					}
				}
				for row, g := range got {
					if _, ok := want[row]; !ok {
						if bad++; bad <= 5 {
							t.Errorf("%s: row %s is %d times in the stream, not in the table", n, row, g)
						}
					}
				}
				t.Logf("%s: %d rows, %d distinct rows read", n, total, len(got))
			}
			if t.Failed() {
				t.Logf("log:\n%s", d.log())
			}
		})
	}
}

// Several tables read at once (--snapshot-workers 3), writes going on in
// each: every table's folded stream equals the table.
func TestSnapshotWorkersManyTables(t *testing.T) {
	t.Parallel()
	const rows, chunkRows = 15_000, 1500
	names := []string{"one", "two", "three", "four"}
	var stmts []string
	for _, n := range names {
		stmts = append(stmts, strings.Replace(itemsTable, "items", n, 1), strings.Replace(fillItems(rows), "items", n, 1))
	}
	r := newSnapRig(t, "wal2json", names, stmts...)
	d := startDaemon(t, r.args(t, r.ep, "initial", chunkRows, "--snapshot-workers", "3")...)
	testenv.WaitSlotStreaming(t, r.conn, r.slot)
	var stops []func() int
	for i, n := range names {
		stops = append(stops, writeTable(t, r.dsn, n, rows, uint64(10+i)))
	}
	for _, n := range names {
		r.waitDone(t, d, n)
	}
	if !strings.Contains(d.log(), "snapshot of table started") {
		t.Fatalf("no snapshot started; log:\n%s", d.log())
	}
	for _, stop := range stops {
		stop()
	}
	raw := r.caughtUp(t, d)
	d.stop(t)
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			recs := parseRecords(t, raw, n)
			checkKeyOrder(t, recs)
			checkFold(t, recs, tableRows(t, r.conn, n))
		})
	}
	if t.Failed() {
		t.Logf("log:\n%s", d.log())
	}
}

// A TRUNCATE (and the rows inserted again in its transaction) in the
// middle of a table's snapshot, writes going on: the fold (a truncate
// empties the table) equals the table.
func TestSnapshotTruncateMidSnapshot(t *testing.T) {
	t.Parallel()
	const rows, chunkRows = 40_000, 1000
	r := newSnapRig(t, "pgoutput", []string{"items"}, itemsTable, fillItems(rows))
	d := startDaemon(t, r.args(t, slowProxy(t, r.ep), "initial", chunkRows)...)
	testenv.WaitSlotStreaming(t, r.conn, r.slot)
	stop := writeItems(t, r.dsn, rows, 7)
	r.midSnapshot(t, d)
	if _, err := r.conn.PgConn().Exec(context.Background(), fmt.Sprintf(
		"BEGIN; TRUNCATE items; INSERT INTO items SELECT i, 'refilled ' || i, 7 FROM generate_series(1, %d, 3) i; COMMIT", rows)).ReadAll(); err != nil {
		t.Fatal(err)
	}
	r.waitDone(t, d, "items")
	t.Logf("%d writes", stop())
	recs := parseRecords(t, r.caughtUp(t, d), "items")
	d.stop(t)
	truncates := 0
	for _, rec := range recs {
		if rec.Op == "truncate" {
			truncates++
		}
	}
	if truncates != 1 {
		t.Errorf("%d truncates in the stream, want 1", truncates)
	}
	checkKeyOrder(t, recs)
	checkFold(t, recs, itemRows(t, r.conn))
	if t.Failed() {
		t.Logf("log:\n%s", d.log())
	}
}

// A table asked for again while its snapshot runs starts over: the fold
// equals the table, the state ends done, and rows_published counts the
// second snapshot.
func TestSnapshotRequestedAgainWhileRunning(t *testing.T) {
	t.Parallel()
	const rows, chunkRows = 40_000, 1000
	r := newSnapRig(t, "wal2json", []string{"items"}, itemsTable, fillItems(rows))
	d := startDaemon(t, r.args(t, r.ep, "never", chunkRows)...)
	testenv.WaitSlotStreaming(t, r.conn, r.slot)
	stop := writeItems(t, r.dsn, rows, 8)
	request := func() {
		t.Helper()
		if out, errOut, code := r.snapshotCommand(t, "--table", "items"); code != 0 {
			t.Fatalf("pg2kinesis snapshot --table items: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}
	request()
	r.midSnapshot(t, d)
	again := r.walLSN(t)
	request()
	s := r.waitDone(t, d, "items")
	t.Logf("%d writes; state %+v", stop(), s)
	recs := r.checkItemsStream(t, d)
	var after int64
	for _, rec := range recs {
		if rec.Op == "read" && rec.commit > again {
			after++
		}
	}
	t.Logf("%d reads placed after the second request, %d counted by the second snapshot", after, s.rows)
	if s.rows < rows*8/10 || s.rows > after {
		t.Errorf("the second snapshot counts %d rows: want about the table's %d, at most the %d reads after the request", s.rows, rows, after)
	}
	if t.Failed() {
		t.Logf("log:\n%s", d.log())
	}
}

// Keys whose text must round-trip through the keyset cursor: timestamps
// with a time zone, floats with digits a default print would round,
// bytea, dates, a key that is a unique index (the replica identity), not
// the primary key. Each row has a distinct v: every v of the table is
// read exactly once, with chunks of 100 rows, for each plugin.
func TestSnapshotCursorKeys(t *testing.T) {
	tables := map[string][]string{
		"ts_key": {
			"CREATE TABLE ts_key (k timestamptz PRIMARY KEY, v int NOT NULL UNIQUE)",
			"INSERT INTO ts_key SELECT '2026-03-29 00:59:59.999999+00'::timestamptz + i * interval '1.000001 second', i FROM generate_series(1, 1000) i",
		},
		"float_key": {
			"CREATE TABLE float_key (k float8 PRIMARY KEY, v int NOT NULL UNIQUE)",
			"INSERT INTO float_key SELECT 0.1 + i * 1e-15, i FROM generate_series(1, 1000) i",
			"INSERT INTO float_key VALUES ('Infinity', -1), ('-Infinity', -2), (1e308, -3), (-0.3, -4)",
		},
		"bytea_key": {
			"CREATE TABLE bytea_key (k bytea PRIMARY KEY, v int NOT NULL UNIQUE)",
			"INSERT INTO bytea_key SELECT decode(md5(i::text), 'hex') || '\\x00'::bytea, i FROM generate_series(1, 1000) i",
		},
		"date_key": {
			"CREATE TABLE date_key (k date PRIMARY KEY, v int NOT NULL UNIQUE)",
			"INSERT INTO date_key SELECT date '1999-12-01' + i, i FROM generate_series(1, 1000) i",
		},
		"index_key": {
			"CREATE TABLE index_key (id int PRIMARY KEY, u text NOT NULL, v int NOT NULL UNIQUE)",
			"CREATE UNIQUE INDEX index_key_u ON index_key (u)",
			"ALTER TABLE index_key REPLICA IDENTITY USING INDEX index_key_u",
			"INSERT INTO index_key SELECT i, 'u ' || (1000 - i) || ' ''x''', i FROM generate_series(1, 1000) i",
		},
	}
	names := []string{"ts_key", "float_key", "bytea_key", "date_key", "index_key"}
	for _, plugin := range []string{"test_decoding", "wal2json", "pgoutput"} {
		t.Run(plugin, func(t *testing.T) {
			t.Parallel()
			r, d := snapshotOnce(t, plugin, tables, names, 100)
			for _, n := range names {
				var total int
				if err := r.conn.QueryRow(context.Background(), "SELECT count(*) FROM "+n).Scan(&total); err != nil {
					t.Fatal(err)
				}
				seen := map[int]int{}
				for _, rec := range r.waitReads(t, n, total) {
					var row struct{ V *int }
					if err := json.Unmarshal(rec.After, &row); err != nil || row.V == nil {
						t.Fatalf("record %s: %v", rec.data, err)
					}
					seen[*row.V]++
				}
				bad := 0
				for v, c := range seen {
					if c != 1 {
						if bad++; bad <= 5 {
							t.Errorf("%s: the row with v = %d read %d times", n, v, c)
						}
					}
				}
				if len(seen) != total {
					t.Errorf("%s: %d rows read, the table has %d", n, len(seen), total)
				}
				s, _ := r.state(t, n)
				t.Logf("%s: %d rows, %d read; state %+v", n, total, len(seen), s)
			}
			if t.Failed() {
				t.Logf("log:\n%s", d.log())
			}
		})
	}
}
