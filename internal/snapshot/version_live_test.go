package snapshot

import (
	"strings"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// The catalog version of a table changes with every DDL that changes its
// description, and with none of what only its rows or statistics do: the
// worker describes the table again only when it changed.
func TestShapeVersionFollowsDDL(t *testing.T) {
	conn, _ := liveDB(t,
		"CREATE TYPE mood AS ENUM ('ok')",
		"CREATE DOMAIN inner_d AS mood",
		"CREATE DOMAIN outer_d AS inner_d",
		"CREATE TABLE v (id int PRIMARY KEY, m outer_d, n int, u int NOT NULL)")
	name := catalog.Name{Schema: "public", Table: "v"}
	version := func() string {
		t.Helper()
		v, err := shapeVersion(ctx(t), conn, name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	last := version()
	for _, tc := range []struct {
		sql     string
		changes bool
	}{
		{"INSERT INTO v SELECT i, 'ok', i, i FROM generate_series(1, 1000) i", false},
		{"UPDATE v SET n = n + 1", false},
		{"VACUUM ANALYZE v", false},
		{"ALTER TABLE v ADD COLUMN extra int DEFAULT 7", true},
		{"ALTER TABLE v DROP COLUMN extra", true},
		{"ALTER TABLE v RENAME COLUMN n TO n2", true},
		{"ALTER TABLE v ALTER COLUMN n2 TYPE bigint", true},
		{"ALTER TABLE v ADD COLUMN g int GENERATED ALWAYS AS (n2 * 2) STORED", true},
		{"CREATE UNIQUE INDEX v_u ON v (u)", true},
		{"ALTER TABLE v REPLICA IDENTITY USING INDEX v_u", true},
		{"ALTER TABLE v REPLICA IDENTITY FULL", true},
		{"ALTER TABLE v DROP CONSTRAINT v_pkey", true},
		{"ALTER TABLE v ADD PRIMARY KEY (u)", true},
		{"ALTER TYPE mood RENAME TO feeling", true}, // two domains down
		{"ALTER DOMAIN inner_d RENAME TO inner2_d", true},
	} {
		v := version()
		if v != last {
			t.Fatalf("before %q: the version changed on its own: %s, was %s", tc.sql, v, last)
		}
		exec(t, conn, tc.sql)
		if v = version(); (v != last) != tc.changes {
			t.Errorf("%s: version %s, was %s; want changed %t", tc.sql, v, last, tc.changes)
		}
		last = v
	}
	// And what changed is what Describe says: the type's new name.
	tb, err := Describe(ctx(t), conn, name, []string{"u"}, decode.PGOutput)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(tb.preamble[0]); len(tb.preamble) < 2 || !strings.Contains(got, "feeling") {
		t.Errorf("pgoutput's Type message %q does not name the renamed type", got)
	}
}
