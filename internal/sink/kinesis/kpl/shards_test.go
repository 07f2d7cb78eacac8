package kpl

import (
	"crypto/md5"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The tests compute hash keys with math/big, which the package does not
// use, so that they check it against an independent implementation.

var two128 = new(big.Int).Lsh(big.NewInt(1), 128)

func bigOf(h Hash) *big.Int {
	b := new(big.Int).Lsh(new(big.Int).SetUint64(h.Hi), 64)
	return b.Or(b, new(big.Int).SetUint64(h.Lo))
}

func hashOf(b *big.Int) Hash {
	lo := new(big.Int).And(b, new(big.Int).SetUint64(^uint64(0)))
	return Hash{new(big.Int).Rsh(b, 64).Uint64(), lo.Uint64()}
}

func TestHashKey(t *testing.T) {
	tests := []struct{ pk, want string }{
		// MD5("") = d41d8cd98f00b204e9800998ecf8427e, in decimal.
		{"", "281949768489412648962353822266799178366"},
		{"1234", ""}, {"public.orders:A-7", ""}, {"Zoë", ""}, {"鍵🔑", ""}, {strings.Repeat("x", 256), ""},
	}
	for _, tc := range tests {
		sum := md5.Sum([]byte(tc.pk))
		want := new(big.Int).SetBytes(sum[:]).String()
		if tc.want != "" && tc.want != want {
			t.Fatalf("the test's own MD5 of %q is %s, want %s", tc.pk, want, tc.want)
		}
		h := HashKey(tc.pk)
		if got := h.String(); got != want {
			t.Errorf("HashKey(%q) = %s, want %s", tc.pk, got, want)
		}
		if bigOf(h).Text(16) != new(big.Int).SetBytes(sum[:]).Text(16) {
			t.Errorf("HashKey(%q) = %x:%x, want the MD5 % x big-endian", tc.pk, h.Hi, h.Lo, sum)
		}
	}
}

func TestHashStringAndParse(t *testing.T) {
	max := new(big.Int).Sub(two128, big.NewInt(1))
	values := []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(9), big.NewInt(10), max,
		new(big.Int).SetUint64(1e19 - 1), new(big.Int).SetUint64(1e19), new(big.Int).SetUint64(^uint64(0)),
		new(big.Int).Lsh(big.NewInt(1), 64), new(big.Int).Exp(big.NewInt(10), big.NewInt(38), nil)}
	rng := rand.New(rand.NewPCG(9, 9))
	for range 1000 {
		v := new(big.Int).SetUint64(rng.Uint64())
		v.Lsh(v, uint(rng.IntN(65)))
		values = append(values, v.Or(v, new(big.Int).SetUint64(rng.Uint64())))
	}
	for _, v := range values {
		s := v.String()
		h, err := ParseHash(s)
		if err != nil {
			t.Fatalf("ParseHash(%s): %v", s, err)
		}
		if bigOf(h).Cmp(v) != 0 {
			t.Fatalf("ParseHash(%s) = %s", s, bigOf(h))
		}
		if got := h.String(); got != s {
			t.Fatalf("String of %s = %s", s, got)
		}
	}
	if h, err := ParseHash("007"); err != nil || h != (Hash{0, 7}) {
		t.Errorf("ParseHash(007) = %v, %v; want 7 (leading zeros are a number still)", h, err)
	}
	for _, bad := range []string{"", "-1", "+1", " 1", "1 ", "0x10", "1e3", "١", two128.String(),
		new(big.Int).Add(two128, big.NewInt(9)).String(), new(big.Int).Mul(two128, big.NewInt(10)).String(), strings.Repeat("9", 60)} {
		if h, err := ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) = %s, want an error", bad, h)
		}
	}
}

// evenSplit is what CreateStream makes of n shards: equal ranges, the last
// one taking the remainder.
func evenSplit(n int) []ShardRange {
	step := new(big.Int).Div(two128, big.NewInt(int64(n)))
	var out []ShardRange
	for i := range n {
		start := new(big.Int).Mul(step, big.NewInt(int64(i)))
		end := new(big.Int).Sub(new(big.Int).Add(start, step), big.NewInt(1))
		if i == n-1 {
			end.Sub(two128, big.NewInt(1))
		}
		out = append(out, ShardRange{ID: fmt.Sprintf("shardId-%012d", i), StartingHashKey: start.String(), EndingHashKey: end.String()})
	}
	return out
}

func TestShardMapLookup(t *testing.T) {
	four := evenSplit(4)
	m, err := ParseShardMap([]ShardRange{four[2], four[0], four[3], four[1]}) // any order
	if err != nil {
		t.Fatal(err)
	}
	h := func(s string) Hash {
		v, ok := new(big.Int).SetString(s, 10)
		if !ok {
			t.Fatalf("bad test value %q", s)
		}
		return hashOf(v)
	}
	tests := []struct {
		name string
		h    Hash
		want int
	}{
		{"0", Hash{}, 0},
		{"2^128-1", MaxHash, 3},
		{"end of shard 0", h(four[0].EndingHashKey), 0},
		{"start of shard 1", h(four[1].StartingHashKey), 1},
		{"2^126 exactly", Hash{1 << 62, 0}, 1},
		{"2^127-1", Hash{1<<63 - 1, ^uint64(0)}, 1},
		{"2^127", Hash{1 << 63, 0}, 2},
		{"end of shard 2", h(four[2].EndingHashKey), 2},
		{"start of shard 3", h(four[3].StartingHashKey), 3},
		{"MD5 of 1234", HashKey("1234"), int(bigOf(HashKey("1234")).Rsh(bigOf(HashKey("1234")), 126).Int64())},
	}
	for _, tc := range tests {
		if got := m.Lookup(tc.h); got.ID != four[tc.want].ID {
			t.Errorf("%s: Lookup(%s) = %s, want %s", tc.name, tc.h, got.ID, four[tc.want].ID)
		}
	}
	shards := m.Shards()
	for i, sh := range shards {
		if sh.ID != four[i].ID || sh.Start.String() != four[i].StartingHashKey || sh.End.String() != four[i].EndingHashKey {
			t.Errorf("Shards()[%d] = %+v, want %+v", i, sh, four[i])
		}
	}
	shards[0].ID = "changed"
	if m.Shards()[0].ID == "changed" {
		t.Error("Shards returns the map's own slice")
	}
}

// Lookup must agree with a linear scan on maps of any shape, uneven as
// resharding leaves them.
func TestShardMapLookupAgreesWithScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	random := func() *big.Int {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return new(big.Int).SetBytes(b[:])
	}
	for _, n := range []int{1, 2, 3, 7, 64, 500} {
		cuts := map[string]*big.Int{}
		for len(cuts) < n-1 {
			if c := random(); c.Sign() > 0 {
				cuts[c.String()] = c
			}
		}
		starts := []*big.Int{big.NewInt(0)}
		for _, c := range cuts {
			starts = append(starts, c)
		}
		slices.SortFunc(starts, (*big.Int).Cmp)
		var ranges []ShardRange
		for i, s := range starts {
			end := new(big.Int).Sub(two128, big.NewInt(1))
			if i+1 < len(starts) {
				end.Sub(starts[i+1], big.NewInt(1))
			}
			ranges = append(ranges, ShardRange{ID: fmt.Sprint("s", i), StartingHashKey: s.String(), EndingHashKey: end.String()})
		}
		rng.Shuffle(len(ranges), func(i, j int) { ranges[i], ranges[j] = ranges[j], ranges[i] })
		m, err := ParseShardMap(ranges)
		if err != nil {
			t.Fatalf("%d shards: %v", n, err)
		}
		scan := func(v *big.Int) string {
			for _, r := range ranges {
				s, _ := new(big.Int).SetString(r.StartingHashKey, 10)
				e, _ := new(big.Int).SetString(r.EndingHashKey, 10)
				if s.Cmp(v) <= 0 && v.Cmp(e) <= 0 {
					return r.ID
				}
			}
			t.Fatalf("no shard holds %s", v)
			return ""
		}
		probes := []*big.Int{new(big.Int).Sub(two128, big.NewInt(1))}
		for _, s := range starts {
			probes = append(probes, s, new(big.Int).Add(s, big.NewInt(1)))
			if s.Sign() > 0 {
				probes = append(probes, new(big.Int).Sub(s, big.NewInt(1)))
			}
		}
		for range 200 {
			probes = append(probes, random())
		}
		for _, v := range probes {
			if got, want := m.Lookup(hashOf(v)).ID, scan(v); got != want {
				t.Fatalf("%d shards: Lookup(%s) = %s, want %s", n, v, got, want)
			}
		}
	}
}

func TestShardMapRejects(t *testing.T) {
	four := evenSplit(4)
	tests := []struct {
		name   string
		shards []ShardRange
		msg    string
	}{
		{"none", nil, "no open shards"},
		{"gap", []ShardRange{four[0], four[2], four[3]}, "shards shardId-000000000000 and shardId-000000000002 leave a gap"},
		{"one-key gap", []ShardRange{four[0], {ID: "b", StartingHashKey: plus(four[1].StartingHashKey, 1), EndingHashKey: four[3].EndingHashKey}},
			"leave a gap"},
		{"one-key overlap", []ShardRange{four[0], {ID: "b", StartingHashKey: four[0].EndingHashKey, EndingHashKey: four[3].EndingHashKey}},
			"shards shardId-000000000000 and b overlap"},
		{"shard within another", []ShardRange{{ID: "all", StartingHashKey: "0", EndingHashKey: four[3].EndingHashKey}, four[1]},
			"overlap: all already reaches 2^128-1"},
		{"same start", []ShardRange{four[0], four[1], {ID: "x", StartingHashKey: four[1].StartingHashKey, EndingHashKey: four[1].EndingHashKey}, four[2], four[3]},
			"overlap"},
		{"not from 0", four[1:], "the first shard, shardId-000000000001, starts at"},
		{"not to 2^128-1", four[:3], "the last shard, shardId-000000000002, ends at"},
		{"ends before it starts", []ShardRange{four[0], {ID: "r", StartingHashKey: four[1].EndingHashKey, EndingHashKey: four[1].StartingHashKey}, four[2], four[3]},
			"shard r ends at"},
		{"duplicate ID", []ShardRange{four[0], four[1], four[2], {ID: four[0].ID, StartingHashKey: four[3].StartingHashKey, EndingHashKey: four[3].EndingHashKey}},
			"shard shardId-000000000000 is listed twice"},
		{"bad starting key", []ShardRange{{ID: "s", StartingHashKey: "zero", EndingHashKey: four[3].EndingHashKey}},
			`shard s: starting hash key "zero" is not a decimal number`},
		{"ending key too big", []ShardRange{{ID: "s", StartingHashKey: "0", EndingHashKey: two128.String()}},
			"shard s: ending hash key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseShardMap(tc.shards)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("ParseShardMap = %v, %v; want an error saying %q", m, err, tc.msg)
			}
		})
	}
}

func plus(s string, n int64) string {
	v, _ := new(big.Int).SetString(s, 10)
	return v.Add(v, big.NewInt(n)).String()
}
