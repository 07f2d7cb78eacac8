package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/pg2kinesis/pg2kinesis/internal/config"
	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis"
)

const tailUsage = `Usage: pg2kinesis tail [flags]

Reads a Kinesis stream from every shard (a shard made by resharding after
its parents), unpacks KPL aggregates and prints each record as
<partition key> TAB <data>, one per line. As the Kinesis Client Library
does, it drops an aggregate holding a record whose hash key is outside the
range of the shard it was stored on, and says at the end how many records
it dropped.

Flags:
`

// errStop ends a tail that has printed --count records.
var errStop = errors.New("stop")

// tail is the tail subcommand; it returns the exit code.
func tail(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pg2kinesis tail", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // a usage error is one line, below
	env := func(name, def string) string {
		if v, ok := getenv(config.EnvName(name)); ok {
			return v
		}
		return def
	}
	stream := fs.String("stream-name", env("stream-name", "pg2kinesis"), "Kinesis stream to read.")
	fs.StringVar(stream, "k", *stream, "Short for --stream-name.")
	streamARN := fs.String("stream-arn", env("stream-arn", ""), "Kinesis stream to read, by ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME), such as a stream of another account; instead of --stream-name, in the ARN's region.")
	region := fs.String("aws-region", env("aws-region", ""), "AWS region; empty uses the SDK's default chain.")
	endpoint := fs.String("kinesis-endpoint", env("kinesis-endpoint", ""), "Kinesis endpoint URL, for a local Kinesis-protocol server.")
	from := fs.String("from", "trim_horizon", "Where to start in each shard: trim_horizon (the oldest record) or latest.")
	count := fs.Int("count", 0, "Stop after printing this many records (0: never).")
	timeout := fs.Duration("timeout", 0, "Stop after this long (0: never).")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, tailUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return exitOK
		}
		fmt.Fprintf(stderr, "pg2kinesis tail: %v (see pg2kinesis tail --help)\n", err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pg2kinesis tail: unexpected argument %q (see pg2kinesis tail --help)\n", fs.Arg(0))
		return exitUsage
	}
	if *from != "trim_horizon" && *from != "latest" {
		fmt.Fprintf(stderr, "pg2kinesis tail: invalid value %q for --from: choose trim_horizon or latest\n", *from)
		return exitUsage
	}
	ref, err := tailStream(fs, getenv, *stream, *streamARN, region)
	if err != nil {
		fmt.Fprintf(stderr, "pg2kinesis tail: %v\n", err)
		return exitUsage
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	client, _, err := kinesis.NewClient(ctx, kinesis.ClientConfig{Region: *region, Endpoint: *endpoint})
	if err != nil {
		fmt.Fprintf(stderr, "pg2kinesis tail: %v\n", err)
		return exitFatal
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	printed := 0
	dropped, err := kinesis.Tail(ctx, client, ref, *from == "latest", func(r kinesis.TailRecord) error {
		fmt.Fprintf(w, "%s\t%s\n", r.PartitionKey, r.Data)
		printed++
		if *count > 0 && printed >= *count {
			return errStop
		}
		return w.Flush()
	})
	w.Flush()
	if dropped > 0 {
		fmt.Fprintf(stderr, "pg2kinesis tail: dropped %d records of aggregates stored on a shard whose hash key range does not hold them all, as a KCL consumer does\n", dropped)
	}
	if err != nil && !errors.Is(err, errStop) {
		fmt.Fprintf(stderr, "pg2kinesis tail: %v\n", err)
		return exitFatal
	}
	if *count > 0 && printed < *count && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// The caller waited for count records (make demo does): say so.
		fmt.Fprintf(stderr, "pg2kinesis tail: %d of the %d records asked for (--count) within --timeout %s\n", printed, *count, *timeout)
		return exitFatal
	}
	return exitOK
}

// tailStream is the stream the flags name; with --stream-arn, region
// becomes the ARN's.
func tailStream(fs *flag.FlagSet, getenv func(string) (string, bool), name, streamARN string, region *string) (kinesis.StreamRef, error) {
	if streamARN == "" {
		return kinesis.ByName(name), config.CheckStreamName(name)
	}
	_, nameSet := getenv(config.EnvName("stream-name"))
	fs.Visit(func(f *flag.Flag) { nameSet = nameSet || f.Name == "stream-name" || f.Name == "k" })
	name, r, err := config.StreamByARN(streamARN, nameSet, *region)
	*region = r
	return kinesis.StreamRef{Name: name, ARN: streamARN}, err
}
