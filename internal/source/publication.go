package source

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// ensurePublication makes sure pgoutput's publication exists, creating it
// if it does not. It runs after the slot was checked and before a slot is
// created: pgoutput reads the publication through the historic catalog of
// each change, so a publication created after the slot would not exist for
// the changes in between.
//
// It never creates a publication that covers a table without a usable
// replica identity: Postgres would then refuse the application's UPDATE
// and DELETE on it. A publication that exists is the user's and is used
// as it is.
func (s *Source) ensurePublication(ctx context.Context, conn *pgconn.PgConn) error {
	name := s.cfg.Publication
	rows, err := query(ctx, conn, "SELECT 1 FROM pg_publication WHERE pubname = "+quoteLiteral(name))
	if err != nil {
		return fmt.Errorf("look up publication %q: %w", name, err)
	}
	if len(rows) > 0 {
		return nil
	}
	what, err := s.publicationTables(ctx, conn)
	if err != nil {
		return err
	}
	tables, err := identities(ctx, conn)
	if err != nil {
		return fmt.Errorf("check publication %q before creating it: %w", name, err)
	}
	var unsafe []tableIdentity
	for _, t := range covered(tables, s.cfg.PublicationTables) {
		if !t.usable {
			unsafe = append(unsafe, t)
		}
	}
	if len(unsafe) > 0 {
		return setupf("publication %q does not exist, and creating it would make Postgres refuse the application's UPDATE and DELETE "+
			"on %d table(s) without a usable replica identity: %s; give each a primary key or run ALTER TABLE <table> REPLICA IDENTITY FULL, "+
			"or publish only the tables you stream with --publication-tables-from-pattern and a --table-pat that excludes these, "+
			"or create the publication yourself; nothing was created", name, len(unsafe), nameList(unsafe))
	}
	sql := "CREATE PUBLICATION " + quoteIdent(name) + " " + what
	_, err = conn.Exec(ctx, sql).ReadAll()
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42710": // created meanwhile by another instance
		return nil
	case errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "pg_publication_pubname_index":
		// The same, when the other's CREATE was not committed yet when
		// this one checked: it waited for it, then hit the unique index.
		return nil
	case errors.As(err, &pgErr) && pgErr.Code == "42501":
		return fatalf("publication %q does not exist and this user may not create it (%s): "+
			"ask an administrator to run: %s;", name, pgErr.Message, sql)
	case err != nil:
		return fatalf("create publication %q (%s): %w", name, sql, err)
	}
	s.createdPub = true
	s.log.Info("created publication", "publication", name, "sql", sql)
	return nil
}

// publicationTables is what the new publication covers: every table, or
// the ones PublicationTables picks among those that exist now (permanent
// ones: Postgres publishes no unlogged or temporary table).
func (s *Source) publicationTables(ctx context.Context, conn *pgconn.PgConn) (string, error) {
	pick := s.cfg.PublicationTables
	if pick == nil {
		return "FOR ALL TABLES", nil
	}
	rows, err := query(ctx, conn, "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "+
		"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "+
		"WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' "+
		"AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1, 2")
	if err != nil {
		return "", fmt.Errorf("list tables for publication %q: %w", s.cfg.Publication, err)
	}
	var names []string
	for _, r := range rows {
		if pick(r[0], r[1]) {
			names = append(names, quoteIdent(r[0])+"."+quoteIdent(r[1]))
		}
	}
	if len(names) == 0 {
		return "", fatalf("publication %q: --table-pat matches no table of the database, so there is nothing to publish; "+
			"create the tables first, fix --table-pat, or create the publication yourself", s.cfg.Publication)
	}
	return "FOR TABLE " + strings.Join(names, ", "), nil
}

// undoStart removes what a run that never streamed (it failed, or was
// stopped while retrying) created, so that it leaves nothing behind: the
// slot (created after the publication, it is of no use without it, and
// would hold WAL back), then the publication. It uses a connection of its
// own, the session's being gone.
//
// What another process may read by then stays: a slot that process
// streams from (Run forgets the slot it created once it finds it held by
// another), and a publication while any pgoutput slot of the database
// remains, since a slot does not record which publication its consumer
// names, and pgoutput fails for good on one dropped under it. The slot
// this run's stopped connection was creating does not count: the server
// drops it once it notices the connection gone, which may be after this.
func (s *Source) undoStart() {
	if !s.createdPub && !s.createdSlot {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	connCfg := s.cfg.Conn.Copy()
	if s.cfg.BeforeConnect != nil {
		if err := s.cfg.BeforeConnect(ctx, connCfg); err != nil {
			s.log.Warn("cannot remove what the start that did not stream created", "publication", s.cfg.Publication, "err", err)
			return
		}
	}
	conn, err := pgconn.ConnectConfig(ctx, connCfg)
	if err != nil {
		s.log.Warn("cannot remove what the start that did not stream created", "publication", s.cfg.Publication, "err", err)
		return
	}
	defer conn.Close(ctx)
	if s.createdSlot {
		err := pglogrepl.DropReplicationSlot(ctx, conn, s.cfg.Slot, pglogrepl.DropReplicationSlotOptions{})
		var pgErr *pgconn.PgError
		switch {
		case errors.As(err, &pgErr) && pgErr.Code == "55006":
			s.log.Warn("kept the replication slot and publication the start that did not stream created: another process streams from the slot now",
				"publication", s.cfg.Publication, "err", err)
			return
		case err != nil:
			s.log.Warn("cannot drop the replication slot the start that did not stream created; drop it by hand", "err", err)
			return // the publication stays: the slot needs it
		}
		s.createdSlot = false
		s.log.Info("dropped the replication slot the start that did not stream created")
	}
	if s.createdPub {
		readers, err := query(ctx, conn, "SELECT slot_name FROM pg_catalog.pg_replication_slots "+
			"WHERE plugin = 'pgoutput' AND database = current_database() "+
			"AND active_pid IS DISTINCT FROM "+strconv.FormatUint(uint64(s.creatorPID), 10)+" ORDER BY 1")
		if err != nil {
			s.log.Warn("cannot drop the publication the start that did not stream created; drop it by hand", "publication", s.cfg.Publication, "err", err)
			return
		}
		if len(readers) > 0 {
			names := make([]string, len(readers))
			for i, r := range readers {
				names[i] = r[0]
			}
			s.log.Warn("kept the publication the start that did not stream created: pgoutput replication slots of this database may read it; "+
				"drop it by hand if none does", "publication", s.cfg.Publication, "slots", strings.Join(names, ", "))
			return
		}
		if _, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+quoteIdent(s.cfg.Publication)).ReadAll(); err != nil {
			s.log.Warn("cannot drop the publication the start that did not stream created; drop it by hand", "publication", s.cfg.Publication, "err", err)
			return
		}
		s.createdPub = false
		s.log.Info("dropped the publication the start that did not stream created", "publication", s.cfg.Publication)
	}
}

// missingPublication explains pgoutput's error for a publication dropped
// under a slot, and passes any other error on.
func (s *Source) missingPublication(err error) error {
	var pgErr *pgconn.PgError
	if s.cfg.Plugin != decode.PGOutput || !errors.As(err, &pgErr) || pgErr.Code != "42704" ||
		!strings.HasPrefix(pgErr.Message, "publication ") {
		return err
	}
	return s.publicationGone(err)
}

func (s *Source) publicationGone(err error) error {
	return fatalf("publication %q does not exist for the changes in replication slot %q (it was dropped, or created after the slot): "+
		"pgoutput looks the publication up in the catalog as it was at each change, so creating it again does not help the changes "+
		"already in the slot; recreate the slot with --recreate-slot (which creates a missing publication first; the changes still in the slot are lost, "+
		"re-sync consumers): %w", s.cfg.Publication, s.cfg.Slot, err)
}

// skippedPublication is PostgreSQL 18's form of the missing publication:
// where pgoutput failed the stream with an error before, from 18 on it
// sends a warning and skips the change (so that a publication created
// later is used from then on). Confirming the changes it skips would lose
// them without a word, so the warning stops the run as the error did.
func (s *Source) skippedPublication(n *pgproto3.NoticeResponse) error {
	if s.cfg.Plugin != decode.PGOutput || n.Code != "55000" || !strings.HasPrefix(n.Message, "skipped loading publication") {
		return nil
	}
	return s.publicationGone(fmt.Errorf("replication stream: the server warned: %s (%s)", n.Message, n.Detail))
}

// pluginArgs are the START_REPLICATION options for a server of major
// version major (0: unknown, served as the oldest). pgoutput uses the
// highest protocol the server offers that we understand: 2 with
// streaming of in-progress transactions on 14+, so that a large
// transaction is spilled on our side, not in the server's pg_replslot, and
// 1 before (12, 13). Protocols 3 (15: two-phase transactions) and 4 (16:
// parallel apply of streamed ones) add nothing a change stream needs, and
// 2 stays valid on every later server.
func (s *Source) pluginArgs(major int) []string {
	if s.cfg.Plugin != decode.PGOutput {
		return s.cfg.Plugin.StartOptions()
	}
	pub := `"publication_names" '` + strings.ReplaceAll(quoteIdent(s.cfg.Publication), "'", "''") + `'`
	args := []string{`"proto_version" '1'`, pub}
	if major >= 14 && !s.cfg.NoStreaming {
		args = []string{`"proto_version" '2'`, pub, `"streaming" 'on'`}
	}
	if major >= 14 && s.cfg.Messages {
		args = append(args, `"messages" 'true'`)
	} else if s.cfg.Messages && s.cfg.Heartbeat && major > 0 {
		s.log.Warn("pgoutput sends logical messages from PostgreSQL 14 on: the heartbeat (--heartbeat-interval) writes WAL this server cannot send, so it does not move the slot; use test_decoding or wal2json, or turn it off",
			"server_major_version", major)
	}
	return args
}

// serverMajor is the server's major version from its server_version
// parameter ("15.18 (Debian ...)"), 0 when unreadable.
func serverMajor(conn *pgconn.PgConn) int {
	n, _ := strconv.Atoi(leadingDigits(conn.ParameterStatus("server_version")))
	return n
}

// leadingDigits is the run of ASCII digits that v starts with.
func leadingDigits(v string) string {
	if i := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		return v[:i]
	}
	return v
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
