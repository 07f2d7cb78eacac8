package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// noTLSServer is a Postgres server without TLS that refuses every login,
// as a wrong password is refused; it returns its port.
func noTLSServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := pgproto3.NewBackend(c, c)
				for {
					m, err := b.ReceiveStartupMessage()
					if err != nil {
						return
					}
					switch m.(type) {
					case *pgproto3.SSLRequest:
						if _, err := c.Write([]byte("N")); err != nil {
							return
						}
					case *pgproto3.StartupMessage:
						b.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: `password authentication failed for user "cdc"`})
						_ = b.Flush()
						return
					default:
						return
					}
				}
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// closedPort is a port nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

func TestExplainTLSLeavesOutTheFallback(t *testing.T) {
	server, closed := noTLSServer(t), closedPort(t)
	for _, tc := range []struct {
		name, dsn string
		want      []string // in the message
		unwanted  string
	}{
		// The plain attempt after the refused TLS one says why.
		{"wrong password, sslmode prefer", "port=" + server + " sslmode=prefer", []string{"password authentication failed"}, "tls error"},
		{"wrong password, sslmode allow", "port=" + server + " sslmode=allow", []string{"password authentication failed"}, "tls error"},
		// TLS is the problem: said, with the fix.
		{"no TLS, sslmode require", "port=" + server + " sslmode=require", []string{"server refused TLS connection", "--pg-sslmode prefer", "does not accept TLS"}, "password"},
		// Refused twice (TLS, then plain): said once.
		{"refused, sslmode prefer", "port=" + closed + " sslmode=prefer", []string{"connection refused"}, "tls error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := pgconn.Connect(ctx, "host=127.0.0.1 user=cdc dbname=shop connect_timeout=5 "+tc.dsn)
			if err == nil {
				conn.Close(ctx)
				t.Fatal("connected, want an error")
			}
			err = fmt.Errorf("connect to Postgres: %w", err)
			got := ExplainTLS(err)
			msg := got.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, tc.unwanted) {
				t.Errorf("%q says %q", msg, tc.unwanted)
			}
			if n := strings.Count(msg, " (127.0.0.1): "); n != 1 {
				t.Errorf("%q names %d attempts, want 1", msg, n)
			}
			if !strings.HasPrefix(msg, "connect to Postgres: ") && !strings.Contains(msg, ": connect to Postgres: failed to connect to `user=cdc database=shop`: ") {
				t.Errorf("%q lost the context of the error", msg)
			}
			if !errors.Is(got, err) {
				t.Error("the error is not wrapped")
			}
		})
	}
}
