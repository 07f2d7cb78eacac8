package wal2json

import (
	"fmt"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
)

// columns reads an array of {"name","type","value"} objects onto cols.
func (p *Parser) columns(cols []decode.Column) ([]decode.Column, error) {
	l := &p.lx
	if err := l.expect('['); err != nil {
		return cols, err
	}
	for first := true; ; first = false {
		more, err := l.next(first, ']')
		if err != nil || !more {
			return cols, err
		}
		// Reuse the slot: what it held is most likely the same column of
		// the same table, whose name and type need no lookup then.
		if len(cols) < cap(cols) {
			cols = cols[:len(cols)+1]
		} else {
			cols = append(cols, decode.Column{})
		}
		if err := p.column(&cols[len(cols)-1]); err != nil {
			return cols, fmt.Errorf("column %d: %w", len(cols), err)
		}
	}
}

func (p *Parser) column(c *decode.Column) error {
	l := &p.lx
	name, typ := c.Name, c.Type
	*c = decode.Column{}
	var hasName, hasType, hasValue bool
	if err := l.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		more, err := l.next(first, '}')
		if err != nil {
			return err
		}
		if !more {
			break
		}
		k, err := l.key()
		if err != nil {
			return err
		}
		var v []byte
		switch string(k) {
		case "name":
			hasName = true
			if v, err = l.str(); err == nil {
				c.Name = p.reuse(name, v)
			}
		case "type":
			hasType = true
			if v, err = p.typeName(); err == nil {
				c.Type = p.reuse(typ, v)
			}
		case "value":
			hasValue = true
			err = p.value(c)
		default: // typeoid, optional, position, default: not asked for
			err = l.skip(maxDepth)
		}
		if err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
	}
	if !hasName || !hasType || !hasValue {
		return fmt.Errorf("want name, type and value")
	}
	return nil
}

func (p *Parser) reuse(prev string, b []byte) string {
	if prev == string(b) {
		return prev
	}
	return p.intern(b)
}

func (p *Parser) value(c *decode.Column) error {
	l := &p.lx
	var err error
	c.Value, c.Null = nil, false // the last "value" counts, as in encoding/json
	switch l.peek() {
	case '"':
		c.Value, err = l.str()
		c.Kind = decode.String
	case 't', 'f':
		start := l.pos
		if !l.word("true") && !l.word("false") {
			return l.errAt("want a value")
		}
		c.Value, c.Kind = l.data[start:l.pos:l.pos], decode.Bool
	case 'n':
		if !l.word("null") {
			return l.errAt("want a value")
		}
		c.Null = true
	default:
		c.Value, err = l.number()
		c.Kind = decode.Number
	}
	return err
}

// typeName reads a column's type. wal2json prints a name that format_type
// quoted and that is not an array ("Sales Dept"."Status", "Odd ""Type""")
// as it is, without JSON escaping, which is not JSON unless the name is a
// single quoted identifier. Such a name is taken as printed, SQL quotes and
// all; every other name as the JSON string says.
func (p *Parser) typeName() ([]byte, error) {
	l := &p.lx
	start := l.pos
	v, err := l.str()
	if err == nil {
		if c := l.peek(); c == ',' || c == '}' {
			return v, nil
		}
	}
	if l.pos = start; l.peek() != '"' {
		return nil, err
	}
	start = l.pos
	quoted := false
	for i := start; i < len(l.data); i++ {
		switch c := l.data[i]; {
		case c == '"' && quoted && i+1 < len(l.data) && l.data[i+1] == '"':
			i++ // a doubled quote inside a quoted identifier
		case c == '"':
			quoted = !quoted
		case !quoted && (c == ',' || c == '}'):
			l.pos = i
			return l.data[start:i:i], nil
		}
	}
	return nil, l.errAt("unterminated type name")
}

// keyNames reads include-pk's array of {"name","type"} objects: the names,
// onto names.
func (p *Parser) keyNames(names []string) ([]string, error) {
	l := &p.lx
	if err := l.expect('['); err != nil {
		return names, err
	}
	for first := true; ; first = false {
		more, err := l.next(first, ']')
		if err != nil || !more {
			return names, err
		}
		if err := l.expect('{'); err != nil {
			return names, err
		}
		var name []byte
		for first := true; ; first = false {
			more, err := l.next(first, '}')
			if err != nil {
				return names, err
			}
			if !more {
				break
			}
			k, err := l.key()
			if err != nil {
				return names, err
			}
			if string(k) == "name" {
				name, err = l.str()
			} else {
				err = l.skip(maxDepth)
			}
			if err != nil {
				return names, fmt.Errorf("key column %d: %q: %w", len(names)+1, k, err)
			}
		}
		if name == nil {
			return names, fmt.Errorf("key column %d without a name", len(names)+1)
		}
		names = append(names, p.intern(name))
	}
}
