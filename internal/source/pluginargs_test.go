package source

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg2kinesis/pg2kinesis/internal/decode"
	"github.com/pg2kinesis/pg2kinesis/internal/testenv"
)

// pgoutput gets the highest protocol each server version offers that we
// understand, and logical messages where the server sends them; the
// warning that the heartbeat cannot move the slot comes only with the
// heartbeat on a server too old for it.
func TestPluginArgsPerVersion(t *testing.T) {
	const pub = `"publication_names" '"pg2kinesis"'`
	v1 := []string{`"proto_version" '1'`, pub}
	v2 := []string{`"proto_version" '2'`, pub, `"streaming" 'on'`}
	for _, tc := range []struct {
		name                      string
		major                     int
		noStreaming, messages, hb bool
		want                      []string
		warned                    bool
	}{
		{"12", 12, false, false, false, v1, false},
		{"13 with messages: none to ask for", 13, false, true, false, v1, false},
		{"13 with the heartbeat", 13, false, true, true, v1, true},
		{"unknown version", 0, false, true, true, v1, false},
		{"14", 14, false, false, false, v2, false},
		{"14 with messages", 14, false, true, true, append(slices.Clone(v2), `"messages" 'true'`), false},
		{"18 with messages", 18, false, true, false, append(slices.Clone(v2), `"messages" 'true'`), false},
		{"17 without streaming", 17, true, true, false, []string{`"proto_version" '1'`, pub, `"messages" 'true'`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs testenv.LogBuffer
			s := New(Config{Plugin: decode.PGOutput, Publication: "pg2kinesis", NoStreaming: tc.noStreaming,
				Messages: tc.messages, Heartbeat: tc.hb, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if got := s.pluginArgs(tc.major); !slices.Equal(got, tc.want) {
				t.Errorf("pluginArgs(%d) = %q, want %q", tc.major, got, tc.want)
			}
			if warned := strings.Contains(logs.String(), "heartbeat"); warned != tc.warned {
				t.Errorf("warned %t, want %t; log:\n%s", warned, tc.warned, logs.String())
			}
		})
	}
	s := New(Config{Plugin: decode.TestDecoding})
	if got := s.pluginArgs(17); !slices.Equal(got, decode.TestDecoding.StartOptions()) {
		t.Errorf("test_decoding's pluginArgs = %q, want its own options", got)
	}
}

// The version pluginArgs is given is the test server's, read from the
// replication connection's server_version (the matrix runs this on each
// version: make test-matrix).
func TestServerMajorOfTheTestServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, testenv.Database(t)+" replication=database")
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	if got, want := serverMajor(conn), testenv.ServerMajor(t); got != want {
		t.Fatalf("serverMajor = %d, want %d (server_version %q)", got, want, conn.ParameterStatus("server_version"))
	}
}
