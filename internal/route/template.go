package route

import (
	"errors"
	"fmt"
	"strings"
)

// template is a stream name with {schema} and {table} placeholders.
type template struct {
	raw   string
	parts []part
}

type part struct {
	lit string
	v   placeholder // none: lit
}

type placeholder int

const (
	none placeholder = iota
	schemaName
	tableName
)

// parseTemplate checks that raw is a stream name once its placeholders are
// filled: the literal parts may hold only a stream name's characters.
func parseTemplate(raw string) (template, error) {
	if raw == "" {
		return template{}, errors.New("empty stream name")
	}
	t := template{raw: raw}
	for rest := raw; rest != ""; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			t.parts = append(t.parts, part{lit: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: rest[:i]})
		}
		j := strings.IndexByte(rest, '}')
		if j < i {
			return template{}, fmt.Errorf("unclosed '{': the placeholders are {schema} and {table}")
		}
		switch rest[i : j+1] {
		case "{schema}":
			t.parts = append(t.parts, part{v: schemaName})
		case "{table}":
			t.parts = append(t.parts, part{v: tableName})
		default:
			return template{}, fmt.Errorf("unknown placeholder %s: the placeholders are {schema} and {table}", rest[i:j+1])
		}
		rest = rest[j+1:]
	}
	for _, p := range t.parts {
		if p.v == none {
			if k := strings.IndexFunc(p.lit, func(r rune) bool { return !streamChar(r) }); k >= 0 {
				return template{}, fmt.Errorf("%q may not be in a stream name: a Kinesis stream name is letters, digits, '_', '-' and '.'", p.lit[k:k+1])
			}
		}
	}
	if t.fixed() && len(raw) > MaxStreamName {
		return template{}, fmt.Errorf("longer than %d characters", MaxStreamName)
	}
	return t, nil
}

func (t template) fixed() bool { return len(t.parts) == 1 && t.parts[0].v == none }

func (t template) expand(schema, table string) string {
	if t.fixed() {
		return t.raw
	}
	var b strings.Builder
	for _, p := range t.parts {
		switch p.v {
		case none:
			b.WriteString(p.lit)
		case schemaName:
			writeClean(&b, schema)
		case tableName:
			writeClean(&b, table)
		}
	}
	return b.String()
}

// writeClean writes s with each character a stream name may not have
// replaced by '_', as Debezium does with topic names: a table named
// "Order Items" goes to cdc.public.Order_Items.
func writeClean(b *strings.Builder, s string) {
	for _, r := range s {
		if !streamChar(r) {
			r = '_'
		}
		b.WriteRune(r)
	}
}

func streamChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.'
}
