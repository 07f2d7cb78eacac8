package pipeline

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/pg2kinesis/pg2kinesis/internal/filter"
)

// Config.Route names each record's stream, asked once per table; without
// it records name none.
func TestHandlerRoutesTables(t *testing.T) {
	asked := map[string]int{}
	route := func(schema, table string) (string, error) {
		asked[schema+"."+table]++
		if table == "nokey" {
			return "", errors.New("table public.nokey maps to a stream name over 128 characters")
		}
		return "cdc." + schema + "." + table, nil
	}
	for _, tc := range []struct {
		name  string
		route func(string, string) (string, error)
		want  string
	}{
		{"routed", route, "cdc.public.items"},
		{"one stream", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snk := &captureSink{}
			h, _, _ := testHandler(t, snk, filter.New(nil, nil), Config{Route: tc.route})
			for i, m := range []string{"BEGIN 7", "table public.items: INSERT: id[integer]:1", "table public.items: UPDATE: id[integer]:1", "COMMIT 7"} {
				if err := feed(t, h, pglogrepl.LSN(100+i), m); err != nil {
					t.Fatal(err)
				}
			}
			if len(snk.streams) != 2 || snk.streams[0] != tc.want || snk.streams[1] != tc.want {
				t.Fatalf("streams %q, want %q twice", snk.streams, tc.want)
			}
		})
	}
	if asked["public.items"] != 1 {
		t.Errorf("the route of public.items was asked %d times, want once", asked["public.items"])
	}
	// A table the route cannot name stops the run, naming it.
	h, _, _ := testHandler(t, &captureSink{}, filter.New(nil, nil), Config{Route: route, FullChange: true})
	_ = feed(t, h, 100, "BEGIN 8")
	err := feed(t, h, 101, "table public.nokey: INSERT: a[integer]:1")
	if err == nil || !strings.Contains(err.Error(), "public.nokey maps to a stream name over 128") {
		t.Fatalf("feed = %v, want the route's error", err)
	}
}
