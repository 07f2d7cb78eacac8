package config

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckEnviron(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ []string
		want    []string // in the error; none: no error
	}{
		{"settings and other variables", []string{"PG2KINESIS_PG_SLOT_NAME=cdc", "PG2KINESIS_METRICS_ADDR=", "PGPORT=5433", "HOME=/root", "PG2KINESIS_CONFIG=/etc/p.yaml"}, nil},
		// Read by the tests, scripts/ and bench/, in the environment that
		// runs pg2kinesis.
		{"reserved prefixes", []string{"PG2KINESIS_TEST_PG_DSN=x", "PG2KINESIS_TEST_KINESIS_ENDPOINT=x", "PG2KINESIS_TEST_PG_BIN=x",
			"PG2KINESIS_SERVICES_PG_PORT=1", "PG2KINESIS_SERVICES_DIR=x", "PG2KINESIS_DEMO_METRICS_PORT=1", "PG2KINESIS_BENCH_OUTAGE_PORT=1"}, nil},
		// What Kubernetes adds for a Service named pg2kinesis, or
		// pg2kinesis-metrics, in the pod's namespace.
		{"kubernetes service links", []string{"PG2KINESIS_SERVICE_HOST=10.0.0.1", "PG2KINESIS_SERVICE_PORT=9187", "PG2KINESIS_SERVICE_PORT_METRICS=9187",
			"PG2KINESIS_PORT=tcp://10.0.0.1:9187", "PG2KINESIS_PORT_9187_TCP=tcp://10.0.0.1:9187", "PG2KINESIS_PORT_9187_TCP_PROTO=tcp",
			"PG2KINESIS_PORT_9187_TCP_PORT=9187", "PG2KINESIS_PORT_9187_TCP_ADDR=10.0.0.1", "PG2KINESIS_METRICS_SERVICE_HOST=10.0.0.2",
			"PG2KINESIS_METRICS_PORT=tcp://10.0.0.2:9187"}, nil},
		{"misspelt", []string{"PG2KINESIS_PG_SLOT_NAM=cdc"}, []string{"PG2KINESIS_PG_SLOT_NAM:", "did you mean PG2KINESIS_PG_SLOT_NAME?"}},
		{"dashes kept", []string{"PG2KINESIS_STREAM-NAME=s"}, []string{"PG2KINESIS_STREAM-NAME", "did you mean PG2KINESIS_STREAM_NAME?"}},
		{"libpq's name", []string{"PG2KINESIS_PGPORT=5433"}, []string{"PG2KINESIS_PGPORT", "did you mean PG2KINESIS_PG_PORT?"}},
		{"nothing near", []string{"PG2KINESIS_WHATEVER=1"}, []string{"PG2KINESIS_WHATEVER", "must name a flag", "PG2KINESIS_PG_SLOT_NAME"}},
		{"several", []string{"PG2KINESIS_ZZZ=1", "PG2KINESIS_AAA=1"}, []string{"PG2KINESIS_AAA (and PG2KINESIS_ZZZ)"}},
		{"empty value still named", []string{"PG2KINESIS_SINKK="}, []string{"PG2KINESIS_SINKK", "PG2KINESIS_SINK?"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckEnviron(tc.environ)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("CheckEnviron = %v, want nil", err)
				}
				return
			}
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("CheckEnviron = %v, want a *UsageError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// Every variable --help names passes: the check and the flags agree.
func TestCheckEnvironKnowsEveryFlag(t *testing.T) {
	c, raw := defaults()
	var environ []string
	for _, s := range specs(&c, &raw) {
		environ = append(environ, EnvName(s.name)+"=x")
	}
	if err := CheckEnviron(environ); err != nil {
		t.Fatal(err)
	}
}
