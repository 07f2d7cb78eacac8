package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/pg2kinesis/pg2kinesis/internal/config"
	"github.com/pg2kinesis/pg2kinesis/internal/snapshot"
)

const snapshotUsage = `Usage: pg2kinesis snapshot --table [SCHEMA.]TABLE [--table ...] [pg2kinesis flags]
       pg2kinesis snapshot --status [pg2kinesis flags]

Asks the pg2kinesis that streams the slot (--pg-slot-name) to publish the
rows of the tables named, as reads, while it goes on streaming: a row per
table in the snapshot state table (--snapshot-table, created if missing),
which the daemon looks at every few seconds. A table snapshotted before,
or being snapshotted, starts over: that is how a consumer that must
rebuild its state asks for the rows again. With --status, prints each
table's snapshot for the slot instead.

It takes the flags, environment and config file of pg2kinesis itself (the
connection, the slot, --snapshot-table); it needs INSERT and UPDATE on the
state table, or CREATE on its schema the first time.
`

// snapshotCmd is the snapshot subcommand; it returns the exit code.
func snapshotCmd(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
	tables, status, rest, err := snapshotArgs(args)
	var cfg *config.Config
	if err == nil {
		cfg, err = config.Parse(rest, getenv)
	}
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, snapshotUsage)
		return exitOK
	}
	if err == nil && (len(tables) == 0) == !status {
		err = errors.New("give --table (one or more) or --status")
	}
	if err != nil {
		fmt.Fprintf(stderr, "pg2kinesis snapshot: %s (see pg2kinesis snapshot --help)\n", oneLine(err))
		return exitUsage
	}
	if err := snapshotRequest(ctx, cfg, tables, status, stdout); err != nil {
		fmt.Fprintf(stderr, "pg2kinesis snapshot: %s\n", oneLine(config.ExplainTLS(err)))
		var ue *config.UsageError
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitFatal
	}
	return exitOK
}

// snapshotArgs takes the subcommand's own flags out of args; the rest are
// pg2kinesis' flags.
func snapshotArgs(args []string) (tables []string, status bool, rest []string, err error) {
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		switch {
		case !strings.HasPrefix(args[i], "-"):
			rest = append(rest, args[i])
		case name == "status":
			status = true
		case name == "table" && hasValue:
			tables = append(tables, value)
		case name == "table" && i+1 < len(args):
			i++
			tables = append(tables, args[i])
		case name == "table":
			return nil, false, nil, errors.New("--table needs a table name")
		default:
			rest = append(rest, args[i])
		}
	}
	return tables, status, rest, nil
}

func snapshotRequest(ctx context.Context, cfg *config.Config, tables []string, status bool, stdout io.Writer) error {
	queryConn, err := cfg.PG.QueryConfig()
	if err != nil {
		return err
	}
	hook, err := passwordHook(ctx, cfg, &queryConn.Config)
	if err != nil {
		return err
	}
	conn, err := connector(queryConn, hook)(ctx)
	if err != nil {
		return fmt.Errorf("connect to Postgres: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if status {
		ok, err := snapshot.Exists(ctx, conn, cfg.SnapshotTable)
		if err != nil || !ok {
			if err == nil {
				fmt.Fprintf(stdout, "no snapshot has run: table %s does not exist\n", cfg.SnapshotTable)
			}
			return err
		}
		ps, err := snapshot.LoadState(ctx, conn, cfg.SnapshotTable, cfg.SlotName)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TABLE\tSTATE\tROWS\tCHUNKS\tLAST KEY\tERROR")
		for _, p := range ps {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\n", p.Table, p.State, p.Rows, p.Chunks, strings.Join(p.LastKey, ","), p.Error)
		}
		return w.Flush()
	}
	names, err := snapshot.Resolve(ctx, conn, tables)
	if err != nil {
		return &config.UsageError{Msg: err.Error()}
	}
	if err := snapshot.CreateState(ctx, conn, cfg.SnapshotTable); err != nil {
		return err
	}
	if err := snapshot.Request(ctx, conn, cfg.SnapshotTable, cfg.SlotName, names); err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintf(stdout, "requested a snapshot of %s for slot %s\n", n, cfg.SlotName)
	}
	return nil
}
