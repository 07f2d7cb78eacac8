package metrics

import (
	"runtime"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// pg2kinesis_build_info says which build runs: its labels are the version
// and commit New was given and the Go version, its value always 1.
func TestBuildInfo(t *testing.T) {
	for _, tc := range []struct {
		name, version, commit string
	}{
		{"release", "v0.3.0-12-gabc1234", "abc1234def5678abc1234def5678abc1234def56"},
		{"dirty tree", "abc1234-dirty", "abc1234def5678abc1234def5678abc1234def56-dirty"},
		{"unstamped", "dev", "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			families, err := New(tc.version, tc.commit).Registry.Gather()
			if err != nil {
				t.Fatal(err)
			}
			var info *dto.Metric
			for _, f := range families {
				if f.GetName() == "pg2kinesis_build_info" && len(f.GetMetric()) == 1 {
					info = f.GetMetric()[0]
				}
			}
			if info == nil {
				t.Fatal("no single pg2kinesis_build_info")
			}
			got := map[string]string{}
			for _, l := range info.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			want := map[string]string{"version": tc.version, "commit": tc.commit, "goversion": runtime.Version()}
			if len(got) != len(want) {
				t.Errorf("labels %v, want %v", got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("label %s = %q, want %q", k, got[k], v)
				}
			}
			if v := info.GetGauge().GetValue(); v != 1 {
				t.Errorf("value %v, want 1", v)
			}
		})
	}
}
