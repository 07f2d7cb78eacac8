package pgauth

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/jackc/pgx/v5/pgconn"
)

// fakeTokens records what it was asked for and hands out numbered tokens.
type fakeTokens struct{ asked []string }

func (f *fakeTokens) Token(_ context.Context, endpoint, user string) (string, error) {
	f.asked = append(f.asked, user+"@"+endpoint)
	return fmt.Sprintf("token-%d", len(f.asked)), nil
}

func parse(t *testing.T, dsn string) *pgconn.Config {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestBeforeConnectSetsAFreshTokenEachTime(t *testing.T) {
	f := &fakeTokens{}
	hook := BeforeConnect(f)
	base := parse(t, "host=db.abc.eu-west-1.rds.amazonaws.com port=5433 user=cdc dbname=shop sslmode=require password=static")
	for i := 1; i <= 2; i++ {
		c := base.Copy()
		if err := hook(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("token-%d", i); c.Password != want {
			t.Fatalf("connection %d: password %q, want %q", i, c.Password, want)
		}
	}
	if base.Password != "static" {
		t.Fatalf("hook changed the original config")
	}
	for _, a := range f.asked {
		if a != "cdc@db.abc.eu-west-1.rds.amazonaws.com:5433" {
			t.Fatalf("token asked for %q", a)
		}
	}
}

func TestEndpointRefusesWhatATokenCannotServe(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{"host=/var/run/postgresql user=cdc", "local socket"},
		{"host=a,b port=5432 user=cdc sslmode=require", "one host"},
	} {
		_, err := Endpoint(parse(t, tc.dsn))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--pg-iam-auth") {
			t.Errorf("Endpoint(%q) = %v, want an error about %q naming --pg-iam-auth", tc.dsn, err, tc.want)
		}
	}
	// sslmode=prefer adds a plain-text fallback to the same host: fine.
	if ep, err := Endpoint(parse(t, "host=db port=5432 user=cdc sslmode=prefer")); err != nil || ep != "db:5432" {
		t.Fatalf("Endpoint = %q, %v", ep, err)
	}
}

// The real signer with static credentials: signing is local, so this needs
// no network, and shows the token is the presigned URL RDS expects.
func TestRDSTokenShape(t *testing.T) {
	r := RDSTokens{Region: "eu-west-1", Creds: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")}
	tok, err := r.Token(context.Background(), "db.example.com:5432", "cdc")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "db.example.com:5432?") || strings.Contains(tok, "://") {
		t.Fatalf("token %q: want host:port?query without a scheme", tok)
	}
	q, err := url.ParseQuery(tok[strings.Index(tok, "?")+1:])
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"Action": "connect", "DBUser": "cdc", "X-Amz-Algorithm": "AWS4-HMAC-SHA256"} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	if cred := q.Get("X-Amz-Credential"); !strings.HasPrefix(cred, "AKIDEXAMPLE/") || !strings.HasSuffix(cred, "/eu-west-1/rds-db/aws4_request") {
		t.Errorf("X-Amz-Credential = %q", cred)
	}
	if q.Get("X-Amz-Signature") == "" || q.Get("X-Amz-Expires") != "900" {
		t.Errorf("signature %q, expires %q", q.Get("X-Amz-Signature"), q.Get("X-Amz-Expires"))
	}
	if _, err := r.Token(context.Background(), "db.example.com", "cdc"); err == nil || !strings.Contains(err.Error(), "--pg-iam-auth") {
		t.Errorf("token without a port: %v", err)
	}
}

func TestNewRDSTokensNeedsARegion(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_PROFILE", "")
	if _, err := NewRDSTokens(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "--aws-region") {
		t.Fatalf("NewRDSTokens without a region = %v", err)
	}
	r, err := NewRDSTokens(context.Background(), "ap-south-1")
	if err != nil || r.Region != "ap-south-1" {
		t.Fatalf("NewRDSTokens(ap-south-1) = %+v, %v", r, err)
	}
}
