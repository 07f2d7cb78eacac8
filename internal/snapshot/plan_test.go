package snapshot

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// spansOf prints a plan's spans, (after, upto] and their state.
func spansOf(p *plan) string {
	var b strings.Builder
	for _, s := range p.spans {
		fmt.Fprintf(&b, "(%s,%s]%c ", strings.Join(s.after, ""), strings.Join(s.upto, ""), "trsp"[s.state])
	}
	return strings.TrimSpace(b.String())
}

func key(k string) []string {
	if k == "" {
		return nil
	}
	return []string{k}
}

// readNext takes the plan's next span and records a chunk read from it
// that ended at last, "" for none read (done: it read the span to its
// end). Empty, a chunk ends where it started, as Chunk.Next does.
func readNext(t *testing.T, p *plan, last string, done bool) *span {
	t.Helper()
	s := p.next()
	if s == nil {
		t.Fatalf("no span to read in %s", spansOf(p))
	}
	s.state = reading
	next := key(last)
	if next == nil {
		next = s.after
	}
	p.sent(s, &inflight{next: next, done: done})
	return s
}

func deliveredKeys(ss []*span) []string {
	var out []string
	for _, s := range ss {
		k, end := s.lastKey()
		out = append(out, strings.Join(k, "")+map[bool]string{true: "$"}[end])
	}
	return out
}

func TestPlanReadsInOrder(t *testing.T) {
	t.Parallel()
	p := newPlan(key("b"))
	a := readNext(t, p, "d", false)
	b := readNext(t, p, "f", false)
	c := readNext(t, p, "h", true)
	if got, want := spansOf(p), "(b,d]s (d,f]s (f,]s"; got != want {
		t.Fatalf("plan %s, want %s", got, want)
	}
	// Placed out of order: delivered in key order, each once.
	if got := p.placed(b, false); got != nil {
		t.Fatalf("delivered %v before the span before it", deliveredKeys(got))
	}
	if got := deliveredKeys(p.placed(a, false)); !slices.Equal(got, []string{"d", "f"}) {
		t.Fatalf("delivered %v, want d f", got)
	}
	if got := deliveredKeys(p.placed(c, false)); !slices.Equal(got, []string{"h$"}) {
		t.Fatalf("delivered %v, want h$ (the table's end)", got)
	}
	if !p.done() {
		t.Fatalf("plan %s not done", spansOf(p))
	}
}

// A spoiled chunk's span is read again, whole, before the spans after it
// are delivered; the chunks read after it stand.
func TestPlanReadsASpoiledSpanAgain(t *testing.T) {
	t.Parallel()
	p := newPlan(nil)
	a := readNext(t, p, "c", false)
	b := readNext(t, p, "e", false)
	if got := p.placed(a, true); got != nil {
		t.Fatalf("a spoiled chunk delivered %v", deliveredKeys(got))
	}
	if got := p.placed(b, false); got != nil {
		t.Fatalf("delivered %v with the span before it to be read again", deliveredKeys(got))
	}
	if s := p.next(); s != a || s.after != nil || !slices.Equal(s.upto, key("c")) {
		t.Fatalf("next span %+v, want the spoiled one, (,c]", s)
	}
	// Read again, it ends at its bound: one chunk stands for it.
	again := readNext(t, p, "c", false)
	if got, want := spansOf(p), "(,c]s (c,e]p (e,]t"; got != want {
		t.Fatalf("plan %s, want %s", got, want)
	}
	if got := deliveredKeys(p.placed(again, false)); !slices.Equal(got, []string{"c", "e"}) {
		t.Fatalf("delivered %v, want c e", got)
	}
}

// A span read in a chunk cut short (rows, bytes) keeps its rest to read,
// right after it.
func TestPlanCutChunkLeavesTheRest(t *testing.T) {
	t.Parallel()
	p := newPlan(nil)
	s := p.next()
	s.state = reading
	p.split(s, [][]string{key("m"), key("t")})
	if got, want := spansOf(p), "(,m]r (m,t]t (t,]t"; got != want {
		t.Fatalf("split: plan %s, want %s", got, want)
	}
	s.state = todo
	readNext(t, p, "f", false) // (,m] cut at f
	if got, want := spansOf(p), "(,f]s (f,m]t (m,t]t (t,]t"; got != want {
		t.Fatalf("plan %s, want %s", got, want)
	}
	readNext(t, p, "k", true) // (f,m] read to its end, its last row k
	if got, want := spansOf(p), "(,f]s (f,m]s (m,t]t (t,]t"; got != want {
		t.Fatalf("plan %s, want %s", got, want)
	}
	// The span's bound, not its last row, is where the state stands.
	if k, end := p.spans[1].lastKey(); !slices.Equal(k, key("m")) || end {
		t.Fatalf("span (f,m] delivers up to %v (end %t), want m", k, end)
	}
	if p.inflightCount() != 2 || p.todoSpans() != 2 {
		t.Fatalf("%d in flight, %d to read, want 2 and 2", p.inflightCount(), p.todoSpans())
	}
}

// The table's last span read empty ends the table where its cursor was.
func TestPlanEmptyEnd(t *testing.T) {
	t.Parallel()
	p := newPlan(key("x"))
	s := readNext(t, p, "", true)
	if got := deliveredKeys(p.placed(s, false)); !slices.Equal(got, []string{"x$"}) {
		t.Fatalf("delivered %v, want x$", got)
	}
}
