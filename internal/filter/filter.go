// Package filter decides which changes are published: --table-pat and
// --operations. A filtered change is still acknowledged.
package filter

import (
	"regexp"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// Filter is immutable once built, and safe for concurrent use.
type Filter struct {
	tables *regexp.Regexp
	ops    map[decode.Op]bool // nil: all
}

// Ops are the operations --operations can name, by their String: a
// snapshot's read is filtered as any other, so that a run can publish its
// changes without a snapshot's rows, or the rows alone.
var Ops = []decode.Op{decode.Insert, decode.Update, decode.Delete, decode.Truncate, decode.Read}

// New builds a filter. tables nil means every table; ops empty means every
// operation (Ops).
func New(tables *regexp.Regexp, ops []string) *Filter {
	f := &Filter{tables: tables}
	if len(ops) > 0 {
		f.ops = map[decode.Op]bool{}
		for _, name := range ops {
			for _, op := range Ops {
				if op.String() == name {
					f.ops[op] = true
				}
			}
		}
	}
	return f
}

// Op reports whether changes of this operation are published.
func (f *Filter) Op(op decode.Op) bool {
	return f.ops == nil || f.ops[op]
}

// Table reports whether changes of t are published: the pattern must find
// (search, not match whole) schema.table. Both spellings are tried, the
// unquoted one and the plugin's own (test_decoding quotes identifiers that
// need it, as in public."Order"), so patterns written for the original
// keep working.
func (f *Filter) Table(t decode.Table) bool {
	if f.tables == nil {
		return true
	}
	return f.tables.MatchString(t.Schema+"."+t.Name) || (t.Raw != "" && f.tables.MatchString(t.Raw))
}
