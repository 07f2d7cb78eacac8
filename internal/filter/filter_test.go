package filter

import (
	"regexp"
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
	all := New(nil, nil)
	some := New(nil, []string{"insert", "truncate"})
	for _, op := range []decode.Op{decode.Insert, decode.Update, decode.Delete, decode.Truncate} {
		if !all.Op(op) {
			t.Errorf("no --operations filtered %s", op)
		}
		want := op == decode.Insert || op == decode.Truncate
		if some.Op(op) != want {
			t.Errorf("--operations insert,truncate: %s = %t", op, !want)
		}
	}
}
