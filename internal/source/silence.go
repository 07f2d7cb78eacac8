package source

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// silence notices a replication connection that has gone quiet: a network
// that drops packets without a reset leaves the socket open, and reads
// would wait for as long as TCP retransmits (a quarter of an hour). After
// a status period in which no byte arrived, the next status update asks
// the server for a reply; a connection that stays silent for the limit
// all the same is given up, and Run reconnects.
//
// The reply is a keepalive that carries the server's sent position, which
// also lets an idle slot advance on a server too busy with other
// databases to send keepalives of its own.
type silence struct {
	limit    time.Duration // 0: never give up
	heard    time.Time     // when bytes last arrived, to a status period
	seen     uint64        // the byte count then
	asked    bool          // the next status update asks for a reply
	awaiting bool          // a reply was asked for and has not come
}

func newSilence(limit time.Duration, reads uint64) silence {
	return silence{limit: limit, heard: time.Now(), seen: reads}
}

// timedOut is called when a read timed out at the status deadline, with
// the count of bytes read so far. It returns an error once the connection
// has been silent too long.
func (s *silence) timedOut(now time.Time, reads uint64) error {
	if reads != s.seen {
		s.heard, s.seen = now, reads
		return nil
	}
	if quiet := now.Sub(s.heard); s.limit > 0 && quiet > s.limit {
		return fmt.Errorf("receive replication stream: nothing from the server for %s although asked for a reply: "+
			"the connection looks dead (a network dropping packets?)", quiet.Round(time.Second))
	}
	s.asked = true
	return nil
}

// ask reports whether the status update about to be sent asks for a reply.
func (s *silence) ask() bool {
	if !s.asked {
		return false
	}
	s.asked, s.awaiting = false, true
	return true
}

// reply reports whether a keepalive answers our request for a reply, not
// the server's own (sent when it has sent everything and waits for WAL).
func (s *silence) reply() bool {
	r := s.awaiting
	s.awaiting = false
	return r
}

// silenceLimit is how long the session may stay silent: at least the
// server's wal_sender_timeout. A walsender busy replaying a large
// transaction whose changes all are filtered out reads our messages only
// every wal_sender_timeout/2, so a shorter limit would give up a healthy
// connection, and every reconnect would start the same replay again. A
// server that never times out (0) is never given up on either.
func silenceLimit(ctx context.Context, conn *pgconn.PgConn, limit time.Duration) time.Duration {
	if limit <= 0 {
		return 0
	}
	res, err := conn.Exec(ctx, "SHOW wal_sender_timeout").ReadAll()
	if err != nil || len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 1 {
		return limit // an old or unusual server: keep ours
	}
	wst, ok := parseGUCDuration(string(res[0].Rows[0][0]))
	switch {
	case !ok:
		return limit
	case wst == 0:
		return 0
	}
	return max(limit, wst)
}

// parseGUCDuration reads a time setting as SHOW prints it ("60s", "1min",
// "500ms", "0"); a bare number is in milliseconds.
func parseGUCDuration(v string) (time.Duration, bool) {
	digits := leadingDigits(v)
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	unit := map[string]time.Duration{"": time.Millisecond, "ms": time.Millisecond, "s": time.Second,
		"min": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[strings.TrimSpace(v[len(digits):])]
	if unit == 0 {
		return 0, false
	}
	return time.Duration(n) * unit, true
}
