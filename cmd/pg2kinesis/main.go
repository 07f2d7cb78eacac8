// Command pg2kinesis streams a PostgreSQL database's changes from a logical
// replication slot to an AWS Kinesis stream. main only parses flags and
// wires; the work happens in internal/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/pg2kinesis/pg2kinesis/internal/config"
)

// Exit codes: 0 clean stop, 1 fatal error, 2 bad usage.
const (
	exitOK    = 0
	exitFatal = 1
	exitUsage = 2
)

// memoryLimit is the Go runtime's soft memory limit unless GOMEMLIMIT sets
// one. What is live stays small (the Kinesis sink holds at most 16 MiB of
// records, sent or not, and on top of them the encoded bodies of the
// requests in flight), but a draining backlog makes garbage fast, and the
// default collector lets the heap grow to twice what is live: after a
// Kinesis outage, RSS peaked at 120 MB. The limit makes it collect sooner
// instead (see docs/operations.md for the figures).
const memoryLimit = 40 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" { // the runtime takes an empty one for none
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code. environ is
// the whole environment, only for the check of the PG2KINESIS_* names;
// values are read through getenv.
func run(ctx context.Context, args []string, getenv func(string) (string, bool), environ []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "tail" || args[0] == "snapshot") {
		// The subcommands read the daemon's PG2KINESIS_* variables: a
		// misspelled one is an error for them too.
		if err := config.CheckEnviron(environ); err != nil {
			fmt.Fprintf(stderr, "pg2kinesis %s: %s\n", args[0], oneLine(err))
			return exitUsage
		}
		if args[0] == "tail" {
			return tail(ctx, args[1:], getenv, stdout, stderr)
		}
		return snapshotCmd(ctx, args[1:], getenv, stdout, stderr)
	}
	cfg, err := config.Parse(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		config.Usage(stdout)
		return exitOK
	}
	if err == nil {
		err = config.CheckEnviron(environ)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pg2kinesis: %s\n", oneLine(err))
		return exitUsage
	}
	if cfg.ShowVersion {
		fmt.Fprintln(stdout, versionLine())
		return exitOK
	}
	if err := replicate(ctx, cfg, stdout, stderr); err != nil {
		var ue *config.UsageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "pg2kinesis: %s\n", oneLine(err))
			return exitUsage
		}
		fmt.Fprintf(stderr, "pg2kinesis: %s\n", oneLine(err))
		return exitFatal
	}
	return exitOK
}

// oneLine joins the lines of a multi-line error (pgconn lists one line per
// address it tried) so that the fatal error is one line, as promised.
func oneLine(err error) string {
	var b strings.Builder
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		if b.Len() > 0 {
			if !strings.HasSuffix(b.String(), ":") {
				b.WriteByte(';')
			}
			b.WriteByte(' ')
		}
		b.WriteString(l)
	}
	return b.String()
}
