package config

import (
	"errors"
	"strings"
	"testing"
)

func TestRoutes(t *testing.T) {
	for _, tc := range []struct {
		name          string
		args, env     []string
		file          string
		schema, table string
		want          string // the table's stream; "": no router
	}{
		{"one stream: no router", nil, nil, "", "public", "t", ""},
		{"template", []string{"-k", "cdc.{schema}.{table}"}, nil, "", "public", "orders", "cdc.public.orders"},
		{"route and default", []string{"--route", `^audit\.=audit`, "-k", "rest"}, nil, "", "audit", "log", "audit"},
		{"route misses: the default", []string{"--route", `^audit\.=audit`, "-k", "rest"}, nil, "", "public", "t", "rest"},
		{"first route wins", []string{"--route", `orders=a`, "--route", `^public\.=b`}, nil, "", "public", "orders", "a"},
		{"from the environment", nil, []string{"PG2KINESIS_ROUTE", `^x\.=x-{table}`}, "", "x", "y", "x-y"},
		{"from the file, as a list", nil, nil, "route:\n  - '^a\\.=a'\n  - '^b\\.=b'\n", "b", "t", "b"},
		{"flags replace the file's list", []string{"--route", `^b\.=flag`}, nil, "route:\n  - '^b\\.=file'\n", "b", "t", "flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeFile(t, "routes.yaml", tc.file)}, args...)
			}
			c, err := Parse(args, env(tc.env...))
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if c.Router != nil {
					t.Fatalf("a router for %q", c.StreamName)
				}
				return
			}
			if c.Router == nil {
				t.Fatal("no router")
			}
			got, err := c.Router.Stream(tc.schema, tc.table)
			if err != nil || got != tc.want {
				t.Fatalf("Stream(%s, %s) = %q, %v; want %q", tc.schema, tc.table, got, err, tc.want)
			}
		})
	}
}

func TestRouteUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no =", []string{"--route", "orders"}, `invalid --route "orders": want REGEX=STREAM`},
		{"bad regexp", []string{"--route", "(=x"}, `invalid --route "(=x": error parsing regexp`},
		{"bad stream", []string{"--route", "a=b/c"}, `"/" may not be in a stream name`},
		{"unknown placeholder", []string{"-k", "cdc.{db}.{table}"}, `invalid --stream-name "cdc.{db}.{table}": unknown placeholder {db}`},
		{"with an ARN", []string{"--route", "a=b", "--stream-arn", testARN}, "--route cannot be used with --stream-arn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.args, env())
			var ue *UsageError
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &ue) {
				t.Fatalf("Parse(%q) = %v, want a usage error containing %q", tc.args, err, tc.want)
			}
		})
	}
}
