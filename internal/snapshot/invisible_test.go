package snapshot

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseSnapshot(t *testing.T) {
	t.Parallel()
	epoch := uint64(1) << 32
	for _, tc := range []struct {
		in      string
		want    Invisible
		wantErr bool
	}{
		{in: "740:740:", want: Invisible{From: 740}},
		{in: "740:745:740,742", want: Invisible{Running: []uint32{740, 742}, From: 745}},
		// The epoch above 32 bits is dropped: the stream's xids have none.
		{in: strconv.FormatUint(epoch+9, 10) + ":" + strconv.FormatUint(epoch+12, 10) + ":" + strconv.FormatUint(epoch+10, 10),
			want: Invisible{Running: []uint32{10}, From: 12}},
		{in: "", wantErr: true},
		{in: "1:2", wantErr: true},
		{in: "1:x:", wantErr: true},
		{in: "1:0:", wantErr: true},
		{in: "1:5:3,,4", wantErr: true},
		{in: "1:5:3:4", wantErr: true},
	} {
		got, err := parseSnapshot(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("parseSnapshot(%q): error %v, want error %t", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil && (got.From != tc.want.From || !slices.Equal(got.Running, tc.want.Running)) {
			t.Errorf("parseSnapshot(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), "snapshot") {
			t.Errorf("parseSnapshot(%q): %v does not say what it read", tc.in, err)
		}
	}
}

func FuzzParseSnapshot(f *testing.F) {
	for _, s := range []string{"740:740:", "740:745:740,742", "1:2", "::", "1:18446744073709551615:7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseSnapshot(s)
		if err != nil {
			return
		}
		// What it read, printed back, reads the same.
		parts := make([]string, len(v.Running))
		for i, x := range v.Running {
			parts[i] = strconv.FormatUint(uint64(x), 10)
		}
		again, err := parseSnapshot("1:" + strconv.FormatUint(uint64(v.From), 10) + ":" + strings.Join(parts, ","))
		if v.From == 0 {
			return // an xmax of 2^32: its low half is 0, which no xid is
		}
		if err != nil || again.From != v.From || !slices.Equal(again.Running, v.Running) {
			t.Fatalf("%q read as %+v, printed back as %+v (%v)", s, v, again, err)
		}
	})
}
