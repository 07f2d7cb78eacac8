package source

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

func publicationTables(t *testing.T, conn *pgx.Conn, pub string) []string {
	t.Helper()
	rows, err := conn.Query(t.Context(), "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1", pub)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestPublicationCreated checks that a missing publication is created,
// before the slot, for every table or for the tables the pattern picks, and
// that the slot then streams through it.
func TestPublicationCreated(t *testing.T) {
	for _, tc := range []struct {
		name string
		pick func(schema, table string) bool
		want []string
	}{
		{"for all tables", nil, []string{"public.a_x", "public.a_y", "public.b_z"}},
		{"from the pattern", func(_, table string) bool { return strings.HasPrefix(table, "a_") }, []string{"public.a_x", "public.a_y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := testenv.Database(t)
			conn := testenv.Connect(t, dsn)
			exec(t, conn, "CREATE TABLE a_x (id int PRIMARY KEY); CREATE TABLE a_y (id int PRIMARY KEY); CREATE TABLE b_z (id int PRIMARY KEY)")
			cfg := testConfig(t, dsn, "pub", decode.PGOutput)
			cfg.CreateSlot, cfg.Publication, cfg.PublicationTables = true, `My "Pub"`, tc.pick
			r := start(t, cfg, true)
			waitActive(t, conn, "pub")
			if got := publicationTables(t, conn, `My "Pub"`); !slices.Equal(got, tc.want) {
				t.Fatalf("publication covers %q, want %q", got, tc.want)
			}
			exec(t, conn, "INSERT INTO a_x VALUES (1)")
			// Begin, Relation, then pgoutput's Insert: 'I', relation id, 'N', tuple.
			for m := r.rec.next(t, "", 10*time.Second); m.data[0] != 'I'; m = r.rec.next(t, "", 10*time.Second) {
			}
		})
	}
}

func TestPublicationReused(t *testing.T) {
	dsn := testenv.Database(t)
	conn := testenv.Connect(t, dsn)
	exec(t, conn, "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); CREATE PUBLICATION pg2kinesis FOR TABLE a")
	cfg := testConfig(t, dsn, "reuse", decode.PGOutput)
	cfg.CreateSlot = true
	start(t, cfg, true)
	waitActive(t, conn, "reuse")
	if got := publicationTables(t, conn, "pg2kinesis"); !slices.Equal(got, []string{"public.a"}) {
		t.Fatalf("the existing publication was changed: it covers %q", got)
	}
}

func TestPublicationErrors(t *testing.T) {
	t.Run("pattern matches no table", func(t *testing.T) {
		dsn := testenv.Database(t)
		cfg := testConfig(t, dsn, "nomatch", decode.PGOutput)
		cfg.CreateSlot, cfg.PublicationTables = true, func(string, string) bool { return false }
		err := runOnce(t, cfg)
		if err == nil || !strings.Contains(err.Error(), "--table-pat matches no table") {
			t.Fatalf("Run = %v, want an error saying --table-pat matches nothing", err)
		}
	})
	t.Run("no privilege", func(t *testing.T) {
		dsn := testenv.Database(t)
		conn := testenv.Connect(t, dsn)
		role := testenv.Name(t)
		exec(t, conn, "CREATE ROLE "+role+" LOGIN REPLICATION")
		t.Cleanup(func() { _, _ = testenv.Connect(t, dsn).Exec(t.Context(), "DROP ROLE IF EXISTS "+role) })
		cfg := testConfig(t, strings.Replace(dsn, "user=postgres", "user="+role, 1), "nopriv", decode.PGOutput)
		cfg.CreateSlot = true
		err := runOnce(t, cfg)
		want := `ask an administrator to run: CREATE PUBLICATION "pg2kinesis" FOR ALL TABLES;`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Run = %v, want an error with %q", err, want)
		}
		var n int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'nopriv'").Scan(&n); err != nil || n != 0 {
			t.Fatalf("a slot was created before the publication failed (%d, %v)", n, err)
		}
	})
}
