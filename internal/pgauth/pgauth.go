// Package pgauth supplies a Postgres password that is made per connection
// rather than configured: an RDS/Aurora IAM authentication token, valid for
// 15 minutes and checked only when a connection starts. Making one before
// every connection and reconnection is therefore enough; nothing refreshes
// it while a connection is up.
package pgauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/rds/auth"
	"github.com/jackc/pgx/v5/pgconn"
)

// TokenProvider makes the password for one connection to endpoint
// ("host:port") as user. It is called before every connection attempt; an
// error means no attempt is made.
type TokenProvider interface {
	Token(ctx context.Context, endpoint, user string) (string, error)
}

// RDSTokens signs RDS IAM tokens with Creds for Region. Signing is local:
// AWS is contacted only if Creds themselves need fetching (an instance
// role, SSO), never to make the token.
type RDSTokens struct {
	Region string
	Creds  aws.CredentialsProvider
}

// ErrNoRegion: neither the flags nor the AWS configuration name a region.
var ErrNoRegion = errors.New("--pg-iam-auth needs the database's AWS region: pass --aws-region or set AWS_REGION")

// NewRDSTokens takes the credentials and, when region is empty, the region
// from the AWS SDK's default chain (environment, profile, instance role),
// as the Kinesis client does.
func NewRDSTokens(ctx context.Context, region string) (RDSTokens, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return RDSTokens{}, fmt.Errorf("load AWS configuration for --pg-iam-auth: %w", err)
	}
	if cfg.Region == "" {
		return RDSTokens{}, ErrNoRegion
	}
	return RDSTokens{Region: cfg.Region, Creds: cfg.Credentials}, nil
}

// Token implements TokenProvider with auth.BuildAuthToken.
func (r RDSTokens) Token(ctx context.Context, endpoint, user string) (string, error) {
	tok, err := auth.BuildAuthToken(ctx, endpoint, r.Region, user, r.Creds)
	if err != nil {
		return "", fmt.Errorf("make an RDS IAM token for %s@%s in %s (--pg-iam-auth): %w", user, endpoint, r.Region, err)
	}
	return tok, nil
}

// BeforeConnect returns a hook that sets cfg.Password to a fresh token for
// cfg's host and port. cfg must be a copy owned by the one connection
// attempt (pgconn.Config.Copy), since the hook writes to it.
func BeforeConnect(p TokenProvider) func(ctx context.Context, cfg *pgconn.Config) error {
	return func(ctx context.Context, cfg *pgconn.Config) error {
		endpoint, err := Endpoint(cfg)
		if err != nil {
			return err
		}
		tok, err := p.Token(ctx, endpoint, cfg.User)
		if err != nil {
			return err
		}
		cfg.Password = tok
		return nil
	}
}

// Endpoint is the "host:port" a token must be signed for. A token is good
// for one host, and pgconn uses one password for all hosts it may try, so
// several hosts (libpq's "host=a,b") cannot work with IAM authentication.
func Endpoint(cfg *pgconn.Config) (string, error) {
	if cfg.Host == "" || strings.HasPrefix(cfg.Host, "/") {
		return "", errors.New("--pg-iam-auth needs the database's host name (the RDS or Aurora endpoint), not a local socket: set --pg-host")
	}
	for _, fb := range cfg.Fallbacks {
		if fb.Host != cfg.Host || fb.Port != cfg.Port {
			return "", fmt.Errorf("--pg-iam-auth works with one host, but the connection settings list %s:%d and %s:%d", cfg.Host, cfg.Port, fb.Host, fb.Port)
		}
	}
	if cfg.User == "" {
		return "", errors.New("--pg-iam-auth needs the database user: set --pg-user")
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), nil
}
