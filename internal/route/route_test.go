package route

import (
	"strings"
	"testing"
)

func TestStream(t *testing.T) {
	tests := []struct {
		name          string
		def           string
		routes        []string
		schema, table string
		want          string
	}{
		{"one stream", "pg2kinesis", nil, "public", "orders", "pg2kinesis"},
		{"template", "cdc.{schema}.{table}", nil, "public", "orders", "cdc.public.orders"},
		{"table only", "{table}-changes", nil, "app", "users", "users-changes"},
		{"awkward names become underscores", "cdc.{schema}.{table}", nil, "My Schema", `Order "Items"`, "cdc.My_Schema.Order__Items_"},
		{"unicode becomes underscores", "cdc.{table}", nil, "public", "café", "cdc.caf_"},
		{"first matching route wins", "rest", []string{`^public\.orders$=orders`, `^public\.=public-{table}`}, "public", "orders", "orders"},
		{"second route", "rest", []string{`^public\.orders$=orders`, `^public\.=public-{table}`}, "public", "items", "public-items"},
		{"no route matches: the default", "rest", []string{`^public\.orders$=orders`}, "audit", "log", "rest"},
		{"a route is a search, as --table-pat", "rest", []string{`orders=o`}, "public", "old_orders_2020", "o"},
		{"regexp with =", "rest", []string{`^(?P<x>a=b)$=weird`}, "a=b", "", "rest"},
		{"the stream follows the last =", "rest", []string{`^public\.a=b$=ab`}, "public", "a=b", "ab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.def, tt.routes)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Stream(tt.schema, tt.table)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Stream(%q, %q) = %q, want %q", tt.schema, tt.table, got, tt.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name   string
		def    string
		routes []string
		want   string
	}{
		{"empty stream name", "", nil, `--stream-name "": empty stream name`},
		{"bad character", "cdc/{table}", nil, `--stream-name "cdc/{table}": "/" may not be in a stream name`},
		{"unknown placeholder", "cdc.{database}.{table}", nil, "unknown placeholder {database}"},
		{"unclosed placeholder", "cdc.{table", nil, "unclosed '{'"},
		{"too long", strings.Repeat("s", 129), nil, "longer than 128 characters"},
		{"route without =", "s", []string{"orders"}, `--route "orders": want REGEX=STREAM`},
		{"route without stream", "s", []string{"orders="}, "want REGEX=STREAM"},
		{"route without regexp", "s", []string{"=orders"}, "want REGEX=STREAM"},
		{"bad regexp", "s", []string{"(orders=o"}, `--route "(orders=o": error parsing regexp`},
		{"bad route stream", "s", []string{"orders=a b"}, `" " may not be in a stream name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.def, tt.routes)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New(%q, %q) = %v, want an error containing %q", tt.def, tt.routes, err, tt.want)
			}
		})
	}
}

func TestStreamTooLong(t *testing.T) {
	r, err := New("cdc.{schema}.{table}", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Stream("public", strings.Repeat("t", 125))
	if err == nil || !strings.Contains(err.Error(), "over 128 characters: route it to a shorter name with --route") {
		t.Fatalf("err = %v", err)
	}
}

func TestSingleAndFixed(t *testing.T) {
	tests := []struct {
		def    string
		routes []string
		single bool
		fixed  []string
	}{
		{"pg2kinesis", nil, true, []string{"pg2kinesis"}},
		{"cdc.{table}", nil, false, nil},
		{"rest", []string{"^a=x", "^b=x", "^c={table}"}, false, []string{"rest", "x"}},
		{"cdc.{table}", []string{"^a=x"}, false, []string{"x"}},
	}
	for _, tt := range tests {
		r, err := New(tt.def, tt.routes)
		if err != nil {
			t.Fatal(err)
		}
		if r.Single() != tt.single {
			t.Errorf("%q %q: Single() = %v", tt.def, tt.routes, r.Single())
		}
		if got := strings.Join(r.Fixed(), ","); got != strings.Join(tt.fixed, ",") {
			t.Errorf("%q %q: Fixed() = %q, want %q", tt.def, tt.routes, got, tt.fixed)
		}
	}
}

func FuzzNew(f *testing.F) {
	f.Add("cdc.{schema}.{table}", "^public\\.=p-{table}", "public", "orders")
	f.Add("{", "=", "", "")
	f.Fuzz(func(t *testing.T, def, route, schema, table string) {
		r, err := New(def, []string{route})
		if err != nil {
			return
		}
		s, err := r.Stream(schema, table)
		if err != nil {
			return
		}
		if s == "" || len(s) > MaxStreamName || strings.IndexFunc(s, func(c rune) bool { return !streamChar(c) }) >= 0 {
			t.Fatalf("New(%q, %q).Stream(%q, %q) = %q: not a stream name", def, route, schema, table, s)
		}
	})
}
