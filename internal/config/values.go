package config

// The flag.Value types that bind the flags to the fields of Config.

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// stringList is a repeatable flag. Repeats add up within one source, but
// a later source replaces the list: --operations on the command line
// overrides the config file's list rather than adding to it.
type stringList struct {
	values       *[]string
	layer, owner *int   // the source being applied; the one values came from
	none         string // what --help shows for an empty list
}

func (l stringList) String() string {
	if l.values == nil || len(*l.values) == 0 {
		return l.none
	}
	return strings.Join(*l.values, ",")
}

func (l stringList) Set(v string) error {
	if *l.owner != *l.layer {
		*l.values, *l.owner = nil, *l.layer
	}
	*l.values = append(*l.values, v)
	return nil
}

// isRepeatable lets a config file give a list for the flag.
func (l stringList) isRepeatable() bool { return true }

// boolValue lets --no-aggregate clear the field that --aggregate sets.
type boolValue struct {
	p      *bool
	invert bool
}

func (b boolValue) String() string {
	if b.p == nil {
		return "false"
	}
	return strconv.FormatBool(*b.p != b.invert)
}

func (b boolValue) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	*b.p = v != b.invert
	return nil
}

func (b boolValue) IsBoolFlag() bool { return true }

type stringValue struct{ p *string }

func (s stringValue) String() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}
func (s stringValue) Set(v string) error { *s.p = v; return nil }

type intValue struct{ p *int }

func (i intValue) String() string {
	if i.p == nil {
		return "0"
	}
	return strconv.Itoa(*i.p)
}
func (i intValue) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("want a whole number")
	}
	*i.p = n
	return nil
}

type durationValue struct{ p *time.Duration }

func (d durationValue) String() string {
	if d.p == nil {
		return "0s"
	}
	return d.p.String()
}
func (d durationValue) Set(v string) error {
	x, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("want a duration such as 250ms, 10s or 1h")
	}
	*d.p = x
	return nil
}

func str(p *string) flag.Value { return stringValue{p} }

// typedStr binds a flag to a string type of its own, whose values
// validate checks.
func typedStr[T ~string](p *T) flag.Value { return typedString[T]{p} }

type typedString[T ~string] struct{ p *T }

func (s typedString[T]) String() string {
	if s.p == nil {
		return ""
	}
	return string(*s.p)
}
func (s typedString[T]) Set(v string) error { *s.p = T(v); return nil }
func boolean(p *bool) flag.Value            { return boolValue{p: p} }
func duration(p *time.Duration) flag.Value  { return durationValue{p} }
