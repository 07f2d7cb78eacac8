package config

import (
	"errors"
	"strings"
	"testing"
)

func TestHeartbeatConnConfig(t *testing.T) {
	c := &Config{}
	if cfg, err := c.HeartbeatConnConfig(); cfg != nil || err != nil {
		t.Fatalf("empty --heartbeat-dsn: %v, %v; want nil, nil", cfg, err)
	}
	c.HeartbeatDSN = "host=primary port=6543 dbname=app user=hb"
	cfg, err := c.HeartbeatConnConfig()
	if err != nil || cfg.Host != "primary" || cfg.Port != 6543 || cfg.Database != "app" {
		t.Fatalf("HeartbeatConnConfig() = %+v, %v", cfg, err)
	}
	for _, dsn := range []string{"host=primary port=x password=s3cret", "host=primary password=s3cret oops"} {
		c.HeartbeatDSN = dsn
		_, err := c.HeartbeatConnConfig()
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--heartbeat-dsn") || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("HeartbeatConnConfig(%q) = %v; want a usage error naming --heartbeat-dsn without the password", dsn, err)
		}
	}
}
