package source

import (
	"fmt"
	"time"
)

// silence notices a replication connection that has gone quiet: a network
// that drops packets without a reset leaves the socket open, and reads
// would wait for as long as TCP retransmits (a quarter of an hour). Each
// status period in which nothing arrives, the next status update asks the
// server for a reply; a connection that stays silent for ReceiveTimeout
// all the same is given up, and Run reconnects.
//
// The reply is a keepalive that carries the server's sent position, which
// also lets an idle slot advance on a server too busy with other
// databases to send keepalives of its own.
type silence struct {
	limit    time.Duration // 0: never give up
	heard    time.Time     // when something last arrived, to a status period
	got      bool          // something arrived since the last timeout
	asked    bool          // the next status update asks for a reply
	awaiting bool          // a reply was asked for and has not come
}

func newSilence(limit time.Duration) silence {
	return silence{limit: limit, heard: time.Now()}
}

// received notes a message from the server.
func (s *silence) received() { s.got = true }

// timedOut is called when a read timed out at the status deadline. It
// returns an error once the connection has been silent too long.
func (s *silence) timedOut(now time.Time) error {
	if s.got {
		s.heard, s.got = now, false
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
