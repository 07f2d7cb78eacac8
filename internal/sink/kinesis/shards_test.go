package kinesis

import (
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/sink/kinesis/kpl"
)

// route remembers the last key's shard; whatever the order of keys, it
// answers what the hash ranges say.
func TestRouteRemembersTheLastKey(t *testing.T) {
	half := kpl.Hash{Hi: 1 << 63}
	m, err := kpl.NewShardMap([]kpl.Shard{
		{ID: "low", Start: kpl.Hash{}, End: kpl.Hash{Hi: half.Hi - 1, Lo: ^uint64(0)}},
		{ID: "high", Start: half, End: kpl.Hash{Hi: ^uint64(0), Lo: ^uint64(0)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	sm := &shardMap{m: m}
	ids := sm.ids()
	seen := map[string]bool{}
	for _, pk := range []string{"1", "1", "2", "2", "2", "3", "1", "4", "4", "5", "6", "7", "8", "8"} {
		want := m.Lookup(kpl.HashKey(pk)).ID
		if got := ids[sm.route(pk)]; got != want {
			t.Fatalf("route(%q) = %s, want %s", pk, got, want)
		}
		seen[want] = true
	}
	if !seen["low"] || !seen["high"] {
		t.Fatalf("the keys reach only %v: pick keys for both shards", seen)
	}
	if last := sm.last; !last.set || last.pk != "8" {
		t.Fatalf("last routed %+v, want key 8", last)
	}
}
