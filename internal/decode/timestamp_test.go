package decode

import (
	"testing"
	"time"
)

// slowParse is Timestamps without its cache: time.Parse with each layout.
func slowParse(s string) (time.Time, error) {
	var t time.Time
	var err error
	for _, layout := range timestampLayouts {
		if t, err = time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return t, err
}

// In sequence, through one cache: each value, hit or miss, is what
// time.Parse says, and a bad value is an error even after a good one of
// the same second.
func TestTimestamps(t *testing.T) {
	var c Timestamps
	for _, s := range []string{
		"2026-11-24 15:17:20.043531+00",
		"2026-11-24 15:17:20.9+00",         // same second: cached
		"2026-11-24 15:17:20+00",           // no fraction
		"2026-11-24 15:17:20.000001+00",    // cached again
		"2026-11-24 15:17:20.043531+05:30", // same second, another zone
		"2026-11-24 15:17:20.5+05:30",
		"2026-11-24 15:17:20.5-08:00:15",
		"2026-11-24 15:17:21.123456789+00",  // next second, nanoseconds
		"2026-11-24 15:17:21.1234567891+00", // too fine: time.Parse decides
		"2026-11-24 15:17:21.+00",
		"2026-11-24 15:17:21.5",
		"2026-11-24 15:17:21.5x00",
		"2026-11-24 15:17:21.5+0x",
		"2026-11-24 15:17:21",
		"2026-11-24 15:17:21.999999+00",
		"2026-02-30 15:17:21.5+00",
		"",
	} {
		want, wantErr := slowParse(s)
		got, err := c.Parse([]byte(s))
		if (err != nil) != (wantErr != nil) || !got.Equal(want) || got.Location().String() != want.Location().String() {
			t.Errorf("Parse(%q) = %v, %v; time.Parse says %v, %v", s, got, err, want, wantErr)
		}
	}
}

func FuzzTimestamps(f *testing.F) {
	f.Add("2026-11-24 15:17:20.043531+00", "2026-11-24 15:17:20.5+00")
	f.Add("2026-11-24 15:17:20+05:30", "2026-11-24 15:17:20.1-07:00:00")
	f.Fuzz(func(t *testing.T, a, b string) {
		var c Timestamps
		for _, s := range []string{a, b, a} {
			want, wantErr := slowParse(s)
			got, err := c.Parse([]byte(s))
			if (err != nil) != (wantErr != nil) || !got.Equal(want) || got.Location().String() != want.Location().String() {
				t.Fatalf("after %q: Parse(%q) = %v, %v; time.Parse says %v, %v", a, s, got, err, want, wantErr)
			}
		}
	})
}
