package kpl

import "hash/maphash"

// keyIndex gives each distinct partition key of an aggregate its
// partition_key_table index. With single-row transactions every record
// brings a new key, so it is looked up and inserted once per record, by a
// process whose other work keeps it out of the cache. A Go map reaches a
// key's slot through a directory, a table and a group; here one read of
// a flat slice tells a new key (an empty slot) from a known one, a tag of
// its hash sparing most string comparisons, and Reset clears 8 bytes per
// slot rather than the map's slots of keys and values.
//
// The zero value is empty and ready to use.
type keyIndex struct {
	seed  maphash.Seed
	slots []uint64 // 0: empty; else tag(hash) | index+1
	keys  []string // by index
}

// A slot holds the index + 1 in its low half (an aggregate of 1 MiB has
// far fewer than 2^32 keys) and the high half of the key's hash in its
// high half.
const (
	indexBits = 32
	indexMask = 1<<indexBits - 1
	minSlots  = 64
)

func tag(h uint64) uint64 { return h &^ indexMask }

// find returns pk's index, or, when pk is not in the index, the one add
// would give it.
func (t *keyIndex) find(pk string) (idx uint64, known bool) {
	if len(t.keys) == 0 {
		return 0, false
	}
	h := maphash.String(t.seed, pk)
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return uint64(len(t.keys)), false
		}
		if tag(s) == tag(h) && t.keys[s&indexMask-1] == pk {
			return s&indexMask - 1, true
		}
	}
}

// add gives pk, which find did not know, the next index.
func (t *keyIndex) add(pk string) {
	if t.slots == nil {
		t.seed = maphash.MakeSeed()
		t.slots = make([]uint64, minSlots)
	}
	// At most half full, so that a probe meets an empty slot soon.
	if 2*(len(t.keys)+1) > len(t.slots) {
		t.slots = make([]uint64, 2*len(t.slots))
		for i, k := range t.keys {
			t.place(k, uint64(i))
		}
	}
	t.keys = append(t.keys, pk)
	t.place(pk, uint64(len(t.keys)-1))
}

func (t *keyIndex) place(pk string, idx uint64) {
	h := maphash.String(t.seed, pk)
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = tag(h) | (idx + 1)
}

// reset empties the index. It keeps its slots unless an aggregate of
// many keys grew them to far more than the last one needed, which would
// leave every later aggregate clearing them all.
func (t *keyIndex) reset() {
	need := minSlots // a power of two, as every length of slots
	for need < 4*len(t.keys) {
		need *= 2
	}
	if len(t.slots) > 4*need {
		t.slots = make([]uint64, need)
	} else {
		clear(t.slots)
	}
	clear(t.keys) // drop the callers' strings
	t.keys = t.keys[:0]
}
