package main

import (
	"io"
	"log/slog"
)

// newLogger is the one logger of a run, handed to every stage (none of them
// uses slog's default): json for log shippers, text for people.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
