package snapshot

import "slices"

// plan is what is left of a table's snapshot: its key space from the
// state's cursor on, as spans in key order, each read in one chunk or
// more, by any of the table's readers. The state advances over the spans
// delivered in key order only, so that a restart resumes after a prefix
// of the table fully delivered, whichever reader was ahead.
//
// A span is (after, upto]: after its lower bound, nil for the table's
// start, up to and with its upper bound, nil for the table's end. The
// bounds are key values as Postgres prints them; for a table read by
// blocks, block numbers, the lower one read, the upper one not.
type plan struct {
	spans []*span // in key order; the first is the next to deliver
}

type span struct {
	after, upto []string
	state       spanState
	c           *inflight // sent or placed: the chunk that reads it
}

type spanState int

const (
	todo    spanState = iota
	reading           // a reader reads it, or samples it
	sent              // its chunk is handed to the stream
	placed            // its chunk is placed, the spans before it not yet
)

func newPlan(cursor []string) *plan {
	return &plan{spans: []*span{{after: cursor}}}
}

// next is the first span to read, nil if none is (all read, or being).
func (p *plan) next() *span {
	for _, s := range p.spans {
		if s.state == todo {
			return s
		}
	}
	return nil
}

// todoSpans counts the spans to read.
func (p *plan) todoSpans() int {
	n := 0
	for _, s := range p.spans {
		if s.state == todo {
			n++
		}
	}
	return n
}

// sent records the chunk read from s. A chunk that read s to its end
// stands for all of it; one cut short (by its rows or bytes) for the
// keys up to its last row, and the rest of s is read again later.
func (p *plan) sent(s *span, c *inflight) {
	s.state, s.c = sent, c
	if c.done || (s.upto != nil && slices.Equal(c.next, s.upto)) {
		return
	}
	rest := &span{after: c.next, upto: s.upto}
	s.upto = c.next
	p.insertAfter(s, rest)
}

// split cuts the span s, to be read, at bounds, which are in key order
// and within it; empty ranges of keys are harmless, their reads empty.
func (p *plan) split(s *span, bounds [][]string) {
	at := s
	for _, b := range bounds {
		rest := &span{after: b, upto: at.upto}
		at.upto = b
		p.insertAfter(at, rest)
		at = rest
	}
}

func (p *plan) insertAfter(s, rest *span) {
	for i, x := range p.spans {
		if x == s {
			p.spans = append(p.spans[:i+1], append([]*span{rest}, p.spans[i+1:]...)...)
			return
		}
	}
	panic("snapshot plan: span not in the plan") // a bug: spans are only ever the plan's
}

// placed records that the stream has placed s's chunk: spoiled, s is to
// be read again, whole. It returns the spans now delivered in key order,
// those placed at the plan's front, and drops them.
func (p *plan) placed(s *span, spoiled bool) []*span {
	if spoiled {
		s.state, s.c = todo, nil
		return nil
	}
	s.state = placed
	var out []*span
	for len(p.spans) > 0 && p.spans[0].state == placed {
		out = append(out, p.spans[0])
		p.spans = p.spans[1:]
	}
	return out
}

// lastKey is where the table's state stands once s is delivered, and
// whether that is the table's end.
func (s *span) lastKey() (key []string, end bool) {
	if s.upto != nil {
		return s.upto, false
	}
	return s.c.next, true
}

// done reports whether every span is delivered.
func (p *plan) done() bool { return len(p.spans) == 0 }

// inflightCount counts the spans being read or sent and not placed.
func (p *plan) inflightCount() int {
	n := 0
	for _, s := range p.spans {
		if s.state == reading || s.state == sent {
			n++
		}
	}
	return n
}
