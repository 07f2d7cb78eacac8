package kpl

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// keyIndex answers as a map does, through growth, resets and the
// shrinking after a large aggregate.
func TestKeyIndexAgreesWithAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	var ki keyIndex
	for round, n := range []int{0, 1, 31, 32, 33, 300, 5000, 10, 0, 700, 3, 2000} {
		want := map[string]uint64{}
		for i := range n {
			var pk string
			switch rng.IntN(3) {
			case 0:
				pk = fmt.Sprint(rng.IntN(n + 1)) // repeats
			case 1:
				pk = fmt.Sprint("r", round, "-", i) // new
			default:
				pk = [...]string{"", "Zoë", "\x00"}[rng.IntN(3)]
			}
			idx, known := ki.find(pk)
			w, ok := want[pk]
			if !ok {
				w = uint64(len(want))
			}
			if idx != w || known != ok {
				t.Fatalf("round %d, key %d %q: find = %d, %t; want %d, %t", round, i, pk, idx, known, w, ok)
			}
			if !known {
				ki.add(pk)
				want[pk] = w
			}
		}
		for pk, w := range want {
			if idx, known := ki.find(pk); idx != w || !known {
				t.Fatalf("round %d, at the end, %q: find = %d, %t; want %d, true", round, pk, idx, known, w)
			}
		}
		if 2*len(want) > len(ki.slots) && len(want) > 0 {
			t.Fatalf("round %d: %d keys in %d slots, more than half full", round, len(want), len(ki.slots))
		}
		ki.reset()
		if idx, known := ki.find("0"); idx != 0 || known {
			t.Fatalf("round %d: after reset, find = %d, %t; want 0, false", round, idx, known)
		}
	}
	if len(ki.slots) > 4*minSlots*64 {
		t.Fatalf("%d slots kept for aggregates of up to 2000 keys", len(ki.slots))
	}
}
