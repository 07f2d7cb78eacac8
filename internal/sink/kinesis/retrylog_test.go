package kinesis

import (
	"log/slog"
	"testing"
	"time"
)

func TestRetryLog(t *testing.T) {
	var r retryLog
	t0 := time.Now()
	for _, step := range []struct {
		after time.Duration
		level slog.Level
		quiet int
	}{
		{0, slog.LevelWarn, 0},
		{time.Second, slog.LevelDebug, 0},
		{5 * time.Second, slog.LevelDebug, 0},
		{retryLogEvery, slog.LevelWarn, 2},
		{retryLogEvery + time.Second, slog.LevelDebug, 0},
		{3 * retryLogEvery, slog.LevelWarn, 1},
		{5 * retryLogEvery, slog.LevelWarn, 0},
	} {
		level, quiet := r.level(t0.Add(step.after))
		if level != step.level || quiet != step.quiet {
			t.Fatalf("at %s: %s with %d quiet retries, want %s with %d", step.after, level, quiet, step.level, step.quiet)
		}
	}
}
