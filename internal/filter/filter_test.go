package filter

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

func TestTable(t *testing.T) {
	order := decode.Table{Schema: "public", Name: "Order", Raw: `public."Order"`}
	items := decode.Table{Schema: "shop", Name: "items", Raw: "shop.items"}
	for _, tc := range []struct {
		pat         string
		order, item bool
	}{
		{"", true, true},
		{"items", false, true},             // a search, not a full match
		{`^shop\.`, false, true},           // schema.table is searched
		{`^public\.Order$`, true, false},   // unquoted spelling
		{`^public\."Order"$`, true, false}, // the plugin's spelling, as the original saw it
		{`(?i)order|ITEMS`, true, true},
	} {
		var re *regexp.Regexp
		if tc.pat != "" {
			re = regexp.MustCompile(tc.pat)
		}
		f := New(re, nil)
		if got := f.Table(order); got != tc.order {
			t.Errorf("%q on %s = %t", tc.pat, order.Raw, got)
		}
		if got := f.Table(items); got != tc.item {
			t.Errorf("%q on %s = %t", tc.pat, items.Raw, got)
		}
	}
}

func TestOp(t *testing.T) {
	for _, tc := range []struct {
		ops  []string
		want []decode.Op
	}{
		{nil, Ops},
		{[]string{"insert", "truncate"}, []decode.Op{decode.Insert, decode.Truncate}},
		{[]string{"read"}, []decode.Op{decode.Read}},
		{[]string{"insert", "update", "delete", "truncate"}, []decode.Op{decode.Insert, decode.Update, decode.Delete, decode.Truncate}},
		{[]string{"update", "read"}, []decode.Op{decode.Update, decode.Read}},
	} {
		f := New(nil, tc.ops)
		for _, op := range Ops {
			if want := slices.Contains(tc.want, op); f.Op(op) != want {
				t.Errorf("--operations %q: %s published = %t, want %t", tc.ops, op, !want, want)
			}
		}
	}
}

// Every operation has a name of its own, which New knows.
func TestOpsAreNamed(t *testing.T) {
	seen := map[string]bool{}
	for _, op := range Ops {
		name := op.String()
		if strings.HasPrefix(name, "Op(") || seen[name] {
			t.Errorf("operation %d named %q", op, name)
		}
		seen[name] = true
		if f := New(nil, []string{name}); !f.Op(op) {
			t.Errorf("--operations %s does not publish %s", name, op)
		}
	}
}
