package source

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// ensurePublication makes sure pgoutput's publication exists, creating it
// if it does not. It runs before the slot is created: pgoutput reads the
// publication through the historic catalog of each change, so a
// publication created after the slot would not exist for the changes in
// between.
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
	sql := "CREATE PUBLICATION " + quoteIdent(name) + " " + what
	_, err = conn.Exec(ctx, sql).ReadAll()
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42710": // created meanwhile by another instance
		return nil
	case errors.As(err, &pgErr) && pgErr.Code == "42501":
		return fatalf("publication %q does not exist and this user may not create it (%s): "+
			"ask an administrator to run: %s;", name, pgErr.Message, sql)
	case err != nil:
		return fatalf("create publication %q (%s): %w", name, sql, err)
	}
	s.log.Info("created publication", "publication", name, "sql", sql)
	return nil
}

// publicationTables is what the new publication covers: every table, or
// the ones PublicationTables picks among those that exist now.
func (s *Source) publicationTables(ctx context.Context, conn *pgconn.PgConn) (string, error) {
	pick := s.cfg.PublicationTables
	if pick == nil {
		return "FOR ALL TABLES", nil
	}
	rows, err := query(ctx, conn, "SELECT schemaname, tablename FROM pg_tables "+
		"WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2")
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

// pluginArgs are the START_REPLICATION options for the session's server.
// pgoutput uses protocol 2 with streaming where the server has it (14+),
// so that a large transaction is spilled on our side, not in the
// server's pg_replslot, and protocol 1 before.
func (s *Source) pluginArgs(conn *pgconn.PgConn) []string {
	if s.cfg.Plugin != decode.PGOutput {
		return s.cfg.Plugin.StartOptions()
	}
	pub := `"publication_names" '` + strings.ReplaceAll(quoteIdent(s.cfg.Publication), "'", "''") + `'`
	major := serverMajor(conn)
	args := []string{`"proto_version" '1'`, pub}
	if major >= 14 && !s.cfg.NoStreaming {
		args = []string{`"proto_version" '2'`, pub, `"streaming" 'on'`}
	}
	if major >= 14 && s.cfg.Messages {
		args = append(args, `"messages" 'true'`)
	} else if s.cfg.Messages && major > 0 {
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
