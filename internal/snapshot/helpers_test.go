package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/decode/pgoutput"
	"github.com/pg2kinesis/pg2kinesis/internal/decode/testdecoding"
	"github.com/pg2kinesis/pg2kinesis/internal/decode/wal2json"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// liveDB is a fresh database with setup run in it, and a connection.
func liveDB(t *testing.T, setup ...string) (*pgx.Conn, func(context.Context) (*pgx.Conn, error)) {
	t.Helper()
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	// The plugin output is read by SQL up to the flushed WAL: the inserts
	// must be flushed when they commit.
	exec(t, conn, append([]string{"SET synchronous_commit = on"}, setup...)...)
	return conn, func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, dsn) }
}

func exec(t *testing.T, conn *pgx.Conn, sqls ...string) {
	t.Helper()
	for _, sql := range sqls {
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// keys loads every table's key as the pipeline does, through the catalog.
func keys(t *testing.T, connect func(context.Context) (*pgx.Conn, error)) catalog.Keys {
	t.Helper()
	pg := catalog.NewPG(connect)
	defer pg.Close()
	k, err := pg.Load(ctx(t))
	if err != nil {
		t.Fatalf("load keys: %v", err)
	}
	return k
}

// sqlOptions are the plugin's options as the source passes them, as
// pg_logical_slot_peek_changes' variadic name, value pairs.
func sqlOptions(p decode.Plugin) []string {
	if p == decode.PGOutput {
		return []string{"proto_version", "1", "publication_names", "snap"}
	}
	var out []string
	for _, o := range p.StartOptions() { // `"name" 'value'`
		name, value, _ := strings.Cut(o, " ")
		out = append(out, strings.Trim(name, `"`), strings.Trim(value, `'`))
	}
	return out
}

// pluginInserts reads the changes slot holds, through the plugin and the
// project's parser, and returns the inserts, copied.
func pluginInserts(t *testing.T, conn *pgx.Conn, slot string, p decode.Plugin) []decode.Event {
	t.Helper()
	fn := "pg_logical_slot_peek_changes"
	if p == decode.PGOutput {
		fn = "pg_logical_slot_peek_binary_changes"
	}
	opts := sqlOptions(p)
	args := []any{slot}
	ph := []string{"$1", "NULL", "NULL"}
	for _, o := range opts {
		args = append(args, o)
		ph = append(ph, fmt.Sprintf("$%d", len(args)))
	}
	rows, err := conn.Query(ctx(t), "SELECT lsn::text, data FROM "+fn+"("+strings.Join(ph, ", ")+")", args...)
	if err != nil {
		t.Fatalf("read slot %s: %v", slot, err)
	}
	type msg struct {
		lsn  string
		data []byte
	}
	var msgs []msg
	for rows.Next() {
		var m msg
		if p == decode.PGOutput {
			err = rows.Scan(&m.lsn, &m.data)
		} else {
			var s string
			err = rows.Scan(&m.lsn, &s)
			m.data = []byte(s)
		}
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read slot %s: %v", slot, err)
	}
	parse := map[decode.Plugin]func([]byte, pglogrepl.LSN) (*decode.Event, error){
		decode.TestDecoding: testdecoding.New().Parse,
		decode.Wal2JSON:     wal2json.New().Parse,
		decode.PGOutput:     pgoutput.New().Parse,
	}[p]
	var out []decode.Event
	for _, m := range msgs {
		lsn, _ := pglogrepl.ParseLSN(m.lsn)
		ev, err := parse(m.data, lsn)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if ev.Kind == decode.KindChange && ev.Op == decode.Insert {
			out = append(out, clone(ev))
		}
	}
	return out
}

func clone(ev *decode.Event) decode.Event {
	c := decode.Event{Kind: ev.Kind, Op: ev.Op, Table: ev.Table, KeyStated: ev.KeyStated,
		PrimaryKey: slices.Clone(ev.PrimaryKey), IdentityKey: slices.Clone(ev.IdentityKey)}
	for _, col := range ev.New {
		col.Value = bytes.Clone(col.Value)
		c.New = append(c.New, col)
	}
	return c
}

// diff lists how a snapshot event differs from the plugin's insert.
func diff(plugin, snap decode.Event) []string {
	var d []string
	add := func(format string, args ...any) { d = append(d, fmt.Sprintf(format, args...)) }
	if snap.Kind != decode.KindChange || snap.Op != decode.Read {
		add("kind %s op %s, want change read", snap.Kind, snap.Op)
	}
	if plugin.Table != snap.Table {
		add("table %+v, plugin %+v", snap.Table, plugin.Table)
	}
	if !slices.Equal(plugin.PrimaryKey, snap.PrimaryKey) || plugin.KeyStated != snap.KeyStated {
		add("primary key %q (stated %t), plugin %q (stated %t)", snap.PrimaryKey, snap.KeyStated, plugin.PrimaryKey, plugin.KeyStated)
	}
	if !slices.Equal(plugin.IdentityKey, snap.IdentityKey) || (plugin.IdentityKey == nil) != (snap.IdentityKey == nil) {
		add("identity key %q, plugin %q", snap.IdentityKey, plugin.IdentityKey)
	}
	if len(plugin.New) != len(snap.New) {
		add("%d columns, plugin %d: %s, plugin %s", len(snap.New), len(plugin.New), names(snap.New), names(plugin.New))
		return d
	}
	for i, p := range plugin.New {
		s := snap.New[i]
		if p.Name != s.Name || p.Type != s.Type || p.Null != s.Null || p.Kind != s.Kind || !bytes.Equal(p.Value, s.Value) {
			add("column %d: %q %q null=%t kind=%d value=%q, plugin %q %q null=%t kind=%d value=%q",
				i+1, s.Name, s.Type, s.Null, s.Kind, s.Value, p.Name, p.Type, p.Null, p.Kind, p.Value)
		}
	}
	return d
}

func names(cols []decode.Column) string {
	n := make([]string, len(cols))
	for i, c := range cols {
		n[i] = c.Name
	}
	return strings.Join(n, ",")
}

// readAll reads the whole table in chunks of n.
func readAll(t *testing.T, tb *Table, conn *pgx.Conn, n int) (rows []decode.Event, chunks int) {
	t.Helper()
	var after []string
	for {
		c, err := tb.Read(ctx(t), conn, after, Limit{Rows: n})
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		chunks++
		if c.Rows.Len() > n && !tb.Keyless() {
			t.Fatalf("chunk of %d rows, asked for %d", c.Rows.Len(), n)
		}
		rows = append(rows, events(t, c.Rows)...)
		if c.Done {
			return rows, chunks
		}
		if chunks > 1_000_000 {
			t.Fatal("no end")
		}
		after = c.Next
	}
}

// events are copies of the rows' events, to keep (each reuses one).
func events(t *testing.T, r *Rows) []decode.Event {
	t.Helper()
	var out []decode.Event
	err := r.Each(func(ev *decode.Event) error {
		e := *ev
		e.New = slices.Clone(ev.New)
		for i := range e.New {
			e.New[i].Value = bytes.Clone(e.New[i].Value)
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readBySample cuts the rows after the key after (all: nil) into spans
// by a sample of their keys (minBounds bounds at least), and reads them
// span by span.
func readBySample(t *testing.T, tb *Table, conn *pgx.Conn, key []string, after []string, n, minBounds int) (bounds [][]string, keys []string) {
	t.Helper()
	rd := &reader{conn: conn, t: tb}
	bounds, err := rd.sample(ctx(t), job{s: &span{after: after}, sample: true, rowSize: 200, lim: Limit{Rows: 300}})
	if err != nil {
		t.Fatal(err)
	}
	if len(bounds) < minBounds {
		t.Fatalf("%d bounds sampled after %q, want %d at least", len(bounds), after, minBounds)
	}
	for i := range len(bounds) + 1 {
		from, upto := after, []string(nil)
		if i > 0 {
			from = bounds[i-1]
		}
		if i < len(bounds) {
			upto = bounds[i]
		}
		keys = append(keys, readSpanKeys(t, tb, conn, key, from, upto, n)...)
	}
	return bounds, keys
}

func readSpanKeys(t *testing.T, tb *Table, conn *pgx.Conn, key []string, after, upto []string, n int) []string {
	t.Helper()
	var keys []string
	for _, r := range readSpan(t, tb, conn, after, upto, n) {
		keys = append(keys, keyText(t, r, key))
	}
	return keys
}

// readSpan reads the span (after, upto] in chunks of n.
func readSpan(t *testing.T, tb *Table, conn *pgx.Conn, after, upto []string, n int) []decode.Event {
	t.Helper()
	var rows []decode.Event
	for range 1_000_000 {
		c, err := tb.readRange(ctx(t), conn, after, upto, Limit{Rows: n})
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, events(t, c.Rows)...)
		if c.Done || (upto != nil && slices.Equal(c.Next, upto)) {
			return rows
		}
		after = c.Next
	}
	t.Fatal("no end")
	return nil
}
