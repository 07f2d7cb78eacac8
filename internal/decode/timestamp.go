package decode

import (
	"bytes"
	"fmt"
	"time"
)

// Timestamps parses timestamps in the ISO form Postgres prints a
// timestamptz in ("2026-11-24 15:17:20.043531+00"), whose zone offset has
// hours, minutes or seconds depending on the session's time zone. Its
// zero value is ready to use; it is not safe for concurrent use.
//
// Why not time.Parse alone: a stream of small transactions carries a
// commit time per transaction, and parsing it took 8 % of the CPU of a
// single-row-transaction backlog. Commits of one second share all but the
// fraction, so the date, clock and zone are parsed once per second and the
// fraction by hand.
type Timestamps struct {
	second []byte    // "2006-01-02 15:04:05" of the last full parse
	zone   []byte    // its zone offset
	base   time.Time // its time without the fraction
}

var timestampLayouts = [...]string{
	"2006-01-02 15:04:05.999999999-07",
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999-07:00:00",
}

// Parse returns the time b says.
func (c *Timestamps) Parse(b []byte) (time.Time, error) {
	const secondLen = len("2006-01-02 15:04:05")
	if len(b) > secondLen && len(c.second) > 0 && bytes.Equal(b[:secondLen], c.second) {
		if frac, zone, ok := fraction(b[secondLen:]); ok && bytes.Equal(zone, c.zone) {
			return c.base.Add(frac), nil
		}
	}
	var t time.Time
	var err error
	for _, layout := range timestampLayouts {
		if t, err = time.Parse(layout, string(b)); err == nil {
			break
		}
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", b, err)
	}
	if len(b) > secondLen {
		if frac, zone, ok := fraction(b[secondLen:]); ok {
			c.second = append(c.second[:0], b[:secondLen]...)
			c.zone = append(c.zone[:0], zone...)
			c.base = t.Add(-frac)
		}
	}
	return t, nil
}

// fraction reads an optional fraction of a second (".043531") at the
// start of b, and returns it and the rest of b (the zone offset): ok is
// false when what follows the fraction does not start a zone offset.
func fraction(b []byte) (d time.Duration, zone []byte, ok bool) {
	i := 0
	if len(b) > 0 && b[0] == '.' {
		scale := time.Duration(1e9)
		for i = 1; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if i > 9 {
				return 0, nil, false
			}
			scale /= 10
			d += time.Duration(b[i]-'0') * scale
		}
		if i == 1 {
			return 0, nil, false
		}
	}
	if i == len(b) || (b[i] != '+' && b[i] != '-') {
		return 0, nil, false
	}
	return d, b[i:], true
}
