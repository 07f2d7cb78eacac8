package backoff

import (
	"testing"
	"time"
)

func TestDelayGrowsAndIsCapped(t *testing.T) {
	base, max := 500*time.Millisecond, 4*time.Second
	for attempt := 0; attempt <= 40; attempt++ {
		if d := Delay(attempt, base, max); d > max || d < base/2 {
			t.Fatalf("Delay(%d) = %s, want within [%s, %s]", attempt, d, base/2, max)
		}
	}
	if d := Delay(0, base, max); d > base {
		t.Errorf("first delay %s, want at most %s", d, base)
	}
	if d := Delay(10, base, max); d < max/2 {
		t.Errorf("Delay(10) = %s, want at least %s", d, max/2)
	}
}
