package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg2kinesis/pg2kinesis/internal/catalog"
	"github.com/pg2kinesis/pg2kinesis/internal/config"
	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/pgauth"
)

// passwordHook is what makes each Postgres connection's password when it is
// not fixed: with --pg-iam-auth, a fresh RDS IAM token. nil otherwise.
// Settings that no token can work with (a socket, no user, no region) are
// usage errors, found before anything starts.
func passwordHook(ctx context.Context, cfg *config.Config, conn *pgconn.Config) (func(context.Context, *pgconn.Config) error, error) {
	if !cfg.PG.IAMAuth {
		return nil, nil
	}
	if _, err := pgauth.Endpoint(conn); err != nil {
		return nil, &config.UsageError{Msg: err.Error()}
	}
	tokens, err := pgauth.NewRDSTokens(ctx, cfg.AWSRegion)
	if errors.Is(err, pgauth.ErrNoRegion) {
		return nil, &config.UsageError{Msg: err.Error()}
	}
	if err != nil {
		return nil, err
	}
	return pgauth.BeforeConnect(tokens), nil
}

// keysSource is the key cache's catalog reader, with the hook applied to
// a copy of the settings before each of its connections (it keeps one
// open, but opens another after an error, when a token made at start
// would have expired).
func keysSource(conn *pgx.ConnConfig, hook func(context.Context, *pgconn.Config) error) *catalog.PG {
	return catalog.NewPG(connector(conn, hook))
}

// tablesLister lists the tables as the catalog's loader loads keys: with
// the hook applied before its connection.
func tablesLister(conn *pgx.ConnConfig, hook func(context.Context, *pgconn.Config) error) catalog.TableLister {
	if hook == nil {
		return catalog.PGTables(conn)
	}
	return func(ctx context.Context) ([]decode.Table, error) {
		c, err := hooked(ctx, conn, hook)
		if err != nil {
			return nil, err
		}
		return catalog.PGTables(c)(ctx)
	}
}

// connector opens the slot watcher's normal connections, with the hook
// applied before each.
func connector(conn *pgx.ConnConfig, hook func(context.Context, *pgconn.Config) error) func(context.Context) (*pgx.Conn, error) {
	return func(ctx context.Context) (*pgx.Conn, error) {
		c := conn
		if hook != nil {
			var err error
			if c, err = hooked(ctx, conn, hook); err != nil {
				return nil, err
			}
		}
		return pgx.ConnectConfig(ctx, c)
	}
}

// hooked is a copy of conn prepared by hook for one connection.
func hooked(ctx context.Context, conn *pgx.ConnConfig, hook func(context.Context, *pgconn.Config) error) (*pgx.ConnConfig, error) {
	c := conn.Copy()
	if err := hook(ctx, &c.Config); err != nil {
		return nil, fmt.Errorf("prepare the catalog connection: %w", err)
	}
	return c, nil
}

// heartbeatConnector opens the heartbeat's connections to the primary
// (--heartbeat-dsn; nil: none, the heartbeat writes on the slot's server),
// with the hook applied before each as on the other connections.
func heartbeatConnector(conn *pgx.ConnConfig, hook func(context.Context, *pgconn.Config) error) func(context.Context) (*pgx.Conn, error) {
	if conn == nil {
		return nil
	}
	return connector(conn, hook)
}
