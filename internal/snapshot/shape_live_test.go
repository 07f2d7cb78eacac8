package snapshot

import (
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/format"
)

const manyTypes = `"Snap ""Schema"""."Many Types"`

// The key test: a row read by a snapshot is the event the plugin's parser
// gives for the INSERT of that row, column by column, for each plugin and
// for tables keyed by a primary key, by a replica identity index, under
// REPLICA IDENTITY FULL and without a key.
func TestLiveSnapshotRowIsThePluginsInsert(t *testing.T) {
	conn, connect := liveDB(t,
		`CREATE DOMAIN posint AS integer CHECK (VALUE > 0)`,
		`CREATE DOMAIN small_posint AS posint CHECK (VALUE < 100)`,
		`CREATE DOMAIN flag AS boolean`,
		`CREATE DOMAIN label AS text`,
		`CREATE TYPE pair AS (a text, b int)`,
		`CREATE SCHEMA "Snap ""Schema"""`,
		`CREATE TYPE "Snap ""Schema""".mood AS ENUM ('ok', 'sad')`,
		`CREATE TABLE `+manyTypes+` (
			id int, b bigint, sm smallint, o oid, n numeric(10,2), nn numeric, r real, d double precision,
			t text, v varchar(32), ok boolean, "by" bytea, u uuid, ts timestamptz, tsn timestamp(3), dt date,
			j json, jb jsonb, ia int[], ta text[], dom posint, g int GENERATED ALWAYS AS (id * 2) STORED,
			nul text, m "Snap ""Schema""".mood, bits bit(4), vb varbit, ch char(3), tm time(3), iv interval,
			"Weird ""Col""" int, ba bool[], ip inet, pt point, rng int4range,
			sp small_posint, fl flag, lb label, pr pair, pra pair[], ma "Snap ""Schema""".mood[], big text, bigb bytea,
			PRIMARY KEY (t, id))`,
		`CREATE TABLE ri (id int PRIMARY KEY, a int NOT NULL, b text NOT NULL, c int)`,
		`CREATE UNIQUE INDEX ri_ba ON ri (b, a)`,
		`ALTER TABLE ri REPLICA IDENTITY USING INDEX ri_ba`,
		`CREATE TABLE "full" (id int PRIMARY KEY, x text)`,
		`ALTER TABLE "full" REPLICA IDENTITY FULL`,
		`ALTER TABLE "full" ADD COLUMN gone int`,
		`ALTER TABLE "full" ADD COLUMN later text`,
		`ALTER TABLE "full" DROP COLUMN gone`,
		`CREATE TABLE keyless (x int, y text, z numeric)`,
		`CREATE TABLE "select" ("from" int PRIMARY KEY, "user" text)`,
		`CREATE PUBLICATION snap FOR ALL TABLES`,
	)
	for _, p := range decode.Plugins {
		exec(t, conn, `SELECT 'x' FROM pg_create_logical_replication_slot('snap_`+p.String()+`', '`+p.String()+`')`)
	}
	exec(t, conn,
		`INSERT INTO `+manyTypes+` (id, b, sm, o, n, nn, r, d, t, v, ok, "by", u, ts, tsn, dt, j, jb, ia, ta, dom, nul, m,
			bits, vb, ch, tm, iv, "Weird ""Col""", ba, ip, pt, rng,
			sp, fl, lb, pr, pra, ma, big, bigb) VALUES
		(1, 9000000000, -3, 42, 12.5, 'NaN', 'Infinity', '-Infinity', E'a it''s, "q"\nline ü', 'vc', true, '\x00ff',
			'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-01-02 03:04:05.123456+02', '2024-01-02 03:04:05.5', '2024-01-02',
			'{"a": [1,2]}', '{"a": [1,2]}', '{1,NULL,3}', '{"a b","c,d",NULL,"q\"x"}', 5, NULL, 'ok',
			B'1010', B'101', 'ab', '12:34:56.789', '1 day 02:00', 7, '{t,f}', '10.0.0.1/8', '(1,2)', '[1,5)',
			7, true, 'lbl', '("x, y",1)', ARRAY['(a,2)'::pair], '{ok,sad}', repeat('long ', 40000), decode(repeat('00ff', 30000), 'hex')),
		(2, -1, 0, 0, -0.5, -12345678901234567890.123456789, 'NaN', 1.5e300, 'b', '', false, '\x',
			'00000000-0000-0000-0000-000000000000', 'infinity', '-infinity', '2000-02-29',
			'null', '"s"', '{}', '{}', 1, 'x', 'sad', B'0000', B'', '   ', '00:00', '-1 mon', -7, '{}', '::1', '(0,0)', 'empty',
			99, false, '', '(,)', '{}', '{}', 'short', '\x01'),
		(3, NULL, NULL, NULL, NULL, NULL, '-Infinity', 'NaN', 'c three', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
			NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
			NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
		`INSERT INTO ri VALUES (2, 5, 'a two', NULL), (1, 10, 'b one', 100)`,
		`INSERT INTO "full" VALUES (1, 'x', 'l'), (2, NULL, NULL)`,
		`INSERT INTO keyless VALUES (1, 'a', 1.5), (NULL, NULL, 'NaN')`,
		`INSERT INTO "select" VALUES (1, 'me')`,
	)
	all := keys(t, connect)
	tables := []catalog.Name{
		{Schema: `Snap "Schema"`, Table: "Many Types"},
		{Schema: "public", Table: "ri"},
		{Schema: "public", Table: "full"},
		{Schema: "public", Table: "keyless"},
		{Schema: "public", Table: "select"},
	}
	for _, p := range decode.Plugins {
		t.Run(p.String(), func(t *testing.T) {
			inserts := pluginInserts(t, conn, "snap_"+p.String(), p)
			byTable := map[string][]decode.Event{}
			for _, ev := range inserts {
				k := ev.Table.Schema + "." + ev.Table.Name
				byTable[k] = append(byTable[k], ev)
			}
			for _, name := range tables {
				want := byTable[name.Schema+"."+name.Table]
				if len(want) == 0 {
					t.Fatalf("%s: the plugin gave no insert", name)
				}
				key, ok := all[name]
				if !ok {
					t.Fatalf("%s: not in the catalog", name)
				}
				tb, err := Describe(ctx(t), conn, name, key.Columns, p)
				if err != nil {
					t.Fatal(err)
				}
				// Inserted in key order, and in block order for the keyless.
				got, _ := readAll(t, tb, conn, 2)
				if len(got) != len(want) {
					t.Fatalf("%s: %d rows, the plugin gave %d", name, len(got), len(want))
				}
				for i := range want {
					for _, d := range diff(want[i], got[i]) {
						t.Errorf("%s row %d: %s", name, i+1, d)
					}
					// What the integrator matches a row to its changes by.
					if w, g := format.KeyText(&want[i], key.Columns), format.KeyText(&got[i], key.Columns); w != g {
						t.Errorf("%s row %d: key text %q, plugin %q", name, i+1, g, w)
					}
				}
			}
		})
	}
}
