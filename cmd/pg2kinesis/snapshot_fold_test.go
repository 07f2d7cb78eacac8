package main

// The snapshot tests' workload and checks: writes going on during a
// snapshot, and the stream folded per key compared with the table.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// items is the table of the fold tests; writeItems changes it.
const itemsTable = "CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL, n int NOT NULL)"

func fillItems(rows int) string {
	return fmt.Sprintf("INSERT INTO items SELECT i, 'row ' || i, 0 FROM generate_series(1, %d) i", rows)
}

// writeItems changes random rows of items (ids 1 to rows plus a tenth)
// until stop is called: updates, key changes, deletes and inserts, one
// statement per transaction, at most one every 2 ms. A lost connection (a
// Postgres restart) is opened again, for up to a minute; a statement that
// fails on a live connection fails the test. Whether a statement cut off
// with its connection committed does not matter: the checks compare the
// stream with the table, not with the statements.
func writeItems(t *testing.T, dsn string, rows int, seed uint64) (stop func() int) {
	t.Helper()
	return writeTable(t, dsn, "items", rows, seed)
}

// writeTable is writeItems on table, made as items is.
func writeTable(t *testing.T, dsn, table string, rows int, seed uint64) (stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	n := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		var conn *pgx.Conn
		defer func() {
			if conn != nil {
				_ = conn.Close(context.Background())
			}
		}()
		rng := rand.New(rand.NewPCG(seed, 2))
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var lost time.Time // when the connection was lost; zero while it lives
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if conn == nil {
				var err error
				cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
				conn, err = pgx.Connect(cctx, dsn)
				ccancel()
				if err != nil {
					conn = nil
					if lost.IsZero() {
						lost = time.Now()
					}
					if ctx.Err() == nil && time.Since(lost) > time.Minute {
						t.Errorf("writes: no connection for a minute: %v", err)
						return
					}
					time.Sleep(100 * time.Millisecond)
					continue
				}
				lost = time.Time{}
			}
			id := 1 + rng.IntN(rows+rows/10)
			var sql string
			switch k := rng.IntN(10); {
			case k < 4:
				sql = fmt.Sprintf("UPDATE %s SET n = n + 1, v = 'changed %d' WHERE id = %d", table, i, id)
			case k < 6:
				sql = fmt.Sprintf("DELETE FROM %s WHERE id = %d", table, id)
			case k < 7:
				sql = fmt.Sprintf("UPDATE %[1]s SET id = %[2]d WHERE id = %[3]d AND NOT EXISTS (SELECT 1 FROM %[1]s WHERE id = %[2]d)", table, id+1, id)
			default:
				sql = fmt.Sprintf("INSERT INTO %s VALUES (%d, 'new %d', 0) ON CONFLICT (id) DO UPDATE SET v = 'again %d'", table, id, i, i)
			}
			if _, err := conn.Exec(ctx, sql); err != nil {
				switch {
				case ctx.Err() != nil:
					return
				case conn.IsClosed():
					conn, lost = nil, time.Now()
					continue
				}
				t.Errorf("%s: %v", sql, err)
				return
			}
			n++
		}
	}()
	var once sync.Once
	stop = func() int {
		once.Do(func() { cancel(); wg.Wait() })
		return n
	}
	t.Cleanup(func() { stop() })
	return stop
}

// itemRec is an items record's key, old key and row.
type itemRec struct {
	PK     *struct{ ID *int }
	Before *struct{ ID *int } // the old key of an update that changed it
	After  *struct {
		V string
		N int
	}
}

// item decodes r as an items record, once.
func (r *jrec) item(t *testing.T) *itemRec {
	t.Helper()
	if r.it == nil {
		r.it = &itemRec{}
		if err := json.Unmarshal([]byte(r.data), r.it); err != nil {
			t.Fatalf("record %s: %v", r.data, err)
		}
		if r.it.PK == nil || r.it.PK.ID == nil {
			t.Fatalf("record without a key: %s", r.data)
		}
	}
	return r.it
}

// checkItemsStream reads items' records once the stream has caught up,
// stops d, and checks that each key's records are in order and that they
// fold to the table; it returns the records for the caller's own checks.
func (r *snapRig) checkItemsStream(t *testing.T, d *daemon) []*jrec {
	t.Helper()
	recs := parseRecords(t, r.caughtUp(t, d), "items")
	d.stop(t)
	checkKeyOrder(t, recs)
	checkFold(t, recs, itemRows(t, r.conn))
	return recs
}

// foldItems replays items' records in WAL order: id -> "v|n". A read,
// insert or update sets the row (an update whose before names another id
// moved the row from there), a delete removes it, a truncate all.
func foldItems(t *testing.T, recs []*jrec) map[int]string {
	t.Helper()
	rows := map[int]string{}
	for _, r := range walOrder(recs) {
		if r.Op == "truncate" {
			clear(rows)
			continue
		}
		it := r.item(t)
		id := *it.PK.ID
		switch r.Op {
		case "delete":
			delete(rows, id)
		case "insert", "update", "read":
			if it.Before != nil && it.Before.ID != nil && *it.Before.ID != id {
				delete(rows, *it.Before.ID)
			}
			if it.After == nil {
				t.Fatalf("record without an after: %s", r.data)
			}
			rows[id] = fmt.Sprintf("%s|%d", it.After.V, it.After.N)
		default:
			t.Fatalf("unexpected record %s", r.data)
		}
	}
	return rows
}

func itemRows(t *testing.T, conn *pgx.Conn) map[int]string {
	t.Helper()
	return tableRows(t, conn, "items")
}

// tableRows is itemRows of table, made as items is.
func tableRows(t *testing.T, conn *pgx.Conn, table string) map[int]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT id, v, n FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	var id, n int
	var v string
	if _, err := pgx.ForEachRow(rows, []any{&id, &v, &n}, func() error {
		out[id] = fmt.Sprintf("%s|%d", v, n)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkFold compares the fold of items' records with the table: no key
// missing, none left that the table does not hold, every value equal.
func checkFold(t *testing.T, recs []*jrec, table map[int]string) {
	t.Helper()
	got := foldItems(t, recs)
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 10 {
			t.Errorf(format, args...)
		}
	}
	for id, row := range table {
		if g, ok := got[id]; !ok {
			report("row %d (%s) is not in the folded stream; its records:\n%s", id, row, itemRecords(recs, id))
		} else if g != row {
			report("row %d: stream %q, table %q; its records:\n%s", id, g, row, itemRecords(recs, id))
		}
	}
	for id, g := range got {
		if _, ok := table[id]; !ok {
			report("row %d (%s) is in the folded stream, not in the table; its records:\n%s", id, g, itemRecords(recs, id))
		}
	}
	if bad > 10 {
		t.Errorf("... %d rows in all are wrong", bad)
	}
	t.Logf("the table has %d rows; %d records of it folded", len(table), len(recs))
}

var idField = regexp.MustCompile(`"id":(\d+)[,}]`)

// itemRecords lists the records naming id, in WAL order, for a failure.
func itemRecords(recs []*jrec, id int) string {
	var b strings.Builder
	for _, r := range walOrder(recs) {
		for _, m := range idField.FindAllStringSubmatch(r.data, -1) {
			if m[1] == strconv.Itoa(id) {
				b.WriteString("  " + r.data + "\n")
				break
			}
		}
	}
	return b.String()
}

// reads counts the read records of recs per id.
func reads(t *testing.T, recs []*jrec) map[int]int {
	t.Helper()
	n := map[int]int{}
	for _, r := range recs {
		if r.Op == "read" {
			n[*r.item(t).PK.ID]++
		}
	}
	return n
}
