package source

import (
	"strings"
	"testing"
	"time"
)

func TestSilence(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	s := silence{limit: 30 * time.Second, heard: t0}

	// A period with traffic asks nothing.
	s.received()
	if err := s.timedOut(at(10)); err != nil || s.ask() {
		t.Fatalf("after traffic: err %v, asks %t; want neither", err, s.asked)
	}
	// A silent period asks for a reply once; the next keepalive is it.
	if err := s.timedOut(at(20)); err != nil {
		t.Fatal(err)
	}
	if !s.ask() || s.ask() {
		t.Fatal("a silent period should ask for one reply")
	}
	if !s.reply() || s.reply() {
		t.Fatal("the keepalive after the request is its reply, and only that one")
	}
	// The reply counts as traffic: the clock starts again.
	s.received()
	if err := s.timedOut(at(30)); err != nil {
		t.Fatal(err)
	}
	if err := s.timedOut(at(50)); err != nil {
		t.Fatalf("20s of silence under a 30s limit: %v", err)
	}
	err := s.timedOut(at(61))
	if err == nil || !strings.Contains(err.Error(), "nothing from the server for 31s") {
		t.Fatalf("31s of silence: %v, want an error saying so", err)
	}

	never := silence{heard: t0}
	if err := never.timedOut(at(3600)); err != nil || !never.ask() {
		t.Fatalf("without a limit: err %v; want none, and a request for a reply", err)
	}
}
