package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg2kinesis/pg2kinesis/internal/config"
)

// --pg-iam-auth wires a token made from the AWS credentials into every
// connection's password. The credentials are static and signing is local:
// AWS is not contacted.
func TestIAMAuthWiring(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "",
	} {
		t.Setenv(k, v)
	}
	cfg, err := config.Parse([]string{"--pg-iam-auth", "-h", "db.example.com", "-u", "cdc", "--aws-region", "eu-west-1"},
		func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfg.PG.ReplicationConfig()
	if err != nil {
		t.Fatal(err)
	}
	hook, err := passwordHook(context.Background(), cfg, rc)
	if err != nil || hook == nil {
		t.Fatalf("passwordHook: hook %v, err %v", hook != nil, err)
	}
	c := rc.Copy()
	if err := hook(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"db.example.com:5432?Action=connect", "DBUser=cdc", "X-Amz-Credential=AKIDTEST%2F", "%2Feu-west-1%2Frds-db%2F"} {
		if !strings.Contains(c.Password, want) {
			t.Errorf("password %q lacks %q", c.Password, want)
		}
	}

	// The catalog's connections go through the hook too, each on a copy.
	qc, err := cfg.PG.QueryConfig()
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop before connecting")
	var seen string
	_, err = keysSource(qc, func(_ context.Context, c *pgconn.Config) error {
		seen = c.Host
		c.Password = "changed"
		return stop
	}).Load(context.Background())
	if !errors.Is(err, stop) || seen != "db.example.com" || qc.Password == "changed" {
		t.Fatalf("keysSource: err %v, host %q, original password changed: %v", err, seen, qc.Password == "changed")
	}

	off, err := config.Parse(nil, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if hook, err := passwordHook(context.Background(), off, nil); hook != nil || err != nil {
		t.Fatalf("without --pg-iam-auth: hook %v, err %v", hook != nil, err)
	}
}
