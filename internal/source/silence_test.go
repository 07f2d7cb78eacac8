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
	var reads uint64

	// A period with traffic (bytes read, a whole message or not) asks nothing.
	reads += 10
	if err := s.timedOut(at(10), reads); err != nil || s.ask() {
		t.Fatalf("after traffic: err %v, asks %t; want neither", err, s.asked)
	}
	// A silent period asks for a reply once; the next keepalive is it.
	if err := s.timedOut(at(20), reads); err != nil {
		t.Fatal(err)
	}
	if !s.ask() || s.ask() {
		t.Fatal("a silent period should ask for one reply")
	}
	if !s.reply() || s.reply() {
		t.Fatal("the keepalive after the request is its reply, and only that one")
	}
	// The reply counts as traffic: the clock starts again.
	reads += 18
	if err := s.timedOut(at(30), reads); err != nil {
		t.Fatal(err)
	}
	if err := s.timedOut(at(50), reads); err != nil {
		t.Fatalf("20s of silence under a 30s limit: %v", err)
	}
	err := s.timedOut(at(61), reads)
	if err == nil || !strings.Contains(err.Error(), "nothing from the server for 31s") {
		t.Fatalf("31s of silence: %v, want an error saying so", err)
	}

	never := silence{heard: t0}
	if err := never.timedOut(at(3600), 0); err != nil || !never.ask() {
		t.Fatalf("without a limit: err %v; want none, and a request for a reply", err)
	}
}

func TestParseGUCDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1min", time.Minute, true}, {"60s", time.Minute, true}, {"500ms", 500 * time.Millisecond, true},
		{"0", 0, true}, {"2h", 2 * time.Hour, true}, {"1d", 24 * time.Hour, true}, {"1500", 1500 * time.Millisecond, true},
		{"", 0, false}, {"1 fortnight", 0, false}, {"min", 0, false},
	} {
		got, ok := parseGUCDuration(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseGUCDuration(%q) = %s, %t; want %s, %t", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
