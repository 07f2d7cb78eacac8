package main

// The deployment examples under etc/ are checked here, next to the flag
// set they name: each parses, names only flags and PG2KINESIS_* variables
// that exist, and agrees with what the program does (the metrics port, the
// health check paths, the shutdown timeout, the spool directory).

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pg2kinesis/pg2kinesis/internal/config"
)

const etcDir = "../../etc"

// settings runs the example's arguments and environment through the
// program as main does (the check of the PG2KINESIS_* names included, and
// --version, which exits right after both), then parses them for the
// caller's cross-checks.
func settings(t *testing.T, args []string, env map[string]string) *config.Config {
	t.Helper()
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), append(slices.Clone(args), "--version"), getenv, environ, &stdout, &stderr); code != exitOK {
		t.Fatalf("pg2kinesis %s: exit %d: %s", strings.Join(args, " "), code, stderr.String())
	}
	cfg, err := config.Parse(args, getenv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// unitFile is a parsed systemd unit: directive values by section, in order.
type unitFile map[string]map[string][]string

var (
	unitSection   = regexp.MustCompile(`^\[([A-Za-z]+)\]$`)
	unitDirective = regexp.MustCompile(`^([A-Z][A-Za-z0-9]*)=(.*)$`)
)

// parseUnit reads systemd's INI dialect: comments (# or ;), [Section]
// headers and Key=value lines; a key may repeat. Continuation lines are
// not used by the examples and so are refused, as is anything else.
func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unitFile{}
	section := ""
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch m := unitSection.FindStringSubmatch(line); {
		case line == "" || line[0] == '#' || line[0] == ';':
		case m != nil:
			section = m[1]
			if u[section] != nil {
				t.Fatalf("%s:%d: section [%s] repeated", path, i+1, section)
			}
			u[section] = map[string][]string{}
		case strings.HasSuffix(line, `\`):
			t.Fatalf("%s:%d: continuation lines are not expected", path, i+1)
		default:
			d := unitDirective.FindStringSubmatch(line)
			if d == nil || section == "" {
				t.Fatalf("%s:%d: want Key=value inside a section: %q", path, i+1, line)
			}
			u[section][d[1]] = append(u[section][d[1]], d[2])
		}
	}
	return u
}

// one is the single value of a directive.
func (u unitFile) one(t *testing.T, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) != 1 {
		t.Fatalf("[%s] %s: want one value, have %q", section, key, v)
	}
	return v[0]
}

// parseEnvFile reads an EnvironmentFile: NAME=value lines and comments.
func parseEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	name := regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !name.MatchString(k) || strings.ContainsAny(v, `"'$\`) {
			t.Fatalf("%s:%d: want NAME=value without quotes or expansions: %q", path, n, line)
		}
		if _, dup := env[k]; dup {
			t.Fatalf("%s:%d: %s set twice", path, n, k)
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}

// pathSettings are the flags whose value is a file the program reads at
// start; examples point them at files of the target machine, which the
// checks replace with readable stand-ins.
var pathSettings = []string{"pg-password-file", "pg-sslrootcert", "pg-sslcert", "pg-sslkey"}

func TestEtcSystemdEnvFile(t *testing.T) {
	env := parseEnvFile(t, filepath.Join(etcDir, "systemd/pg2kinesis.env"))
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
		if !strings.HasPrefix(k, config.EnvPrefix) {
			t.Errorf("%s: only PG2KINESIS_* settings belong in the example", k)
		}
	}
	// The table the program itself rejects misspelt variables with.
	if err := config.CheckEnviron(environ); err != nil {
		t.Fatal(err)
	}
}

func TestEtcSystemdUnit(t *testing.T) {
	u := parseUnit(t, filepath.Join(etcDir, "systemd/pg2kinesis.service"))
	for s := range u {
		if s != "Unit" && s != "Service" && s != "Install" {
			t.Errorf("unexpected section [%s]", s)
		}
	}
	// The hardening the example promises (docs/operations.md, Deploying).
	for key, want := range map[string]string{
		"Type": "exec", "DynamicUser": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "Restart": "on-failure",
		"EnvironmentFile": "/etc/pg2kinesis/pg2kinesis.env", "CacheDirectory": "pg2kinesis",
	} {
		if got := u.one(t, "Service", key); got != want {
			t.Errorf("%s=%s, want %s", key, got, want)
		}
	}
	if !slices.Contains(u["Service"]["SystemCallFilter"], "@system-service") {
		t.Errorf("SystemCallFilter=%q lacks @system-service", u["Service"]["SystemCallFilter"])
	}
	for _, key := range []string{"MemoryMax", "RestartSec"} {
		if u.one(t, "Service", key) == "" {
			t.Errorf("%s is empty", key)
		}
	}
	// A usage error does not go away by restarting.
	if !slices.Contains(strings.Fields(u.one(t, "Service", "RestartPreventExitStatus")), "2") || exitUsage != 2 {
		t.Errorf("RestartPreventExitStatus should hold the usage exit status %d", exitUsage)
	}

	// ExecStart, with systemd's own variables set as it would set them:
	// the credentials copied into a directory of their own, the cache
	// directory created.
	creds, cache := t.TempDir(), t.TempDir()
	for _, lc := range u["Service"]["LoadCredential"] {
		id, _, _ := strings.Cut(lc, ":")
		if err := os.WriteFile(filepath.Join(creds, id), []byte("secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	execStart := u.one(t, "Service", "ExecStart")
	expanded := strings.NewReplacer("${CREDENTIALS_DIRECTORY}", creds, "${CACHE_DIRECTORY}", cache).Replace(execStart)
	if strings.ContainsAny(expanded, `$"'\`) {
		t.Fatalf("ExecStart=%s: only ${CREDENTIALS_DIRECTORY} and ${CACHE_DIRECTORY}, no quotes, are expected", execStart)
	}
	words := strings.Fields(expanded)
	if !filepath.IsAbs(words[0]) || filepath.Base(words[0]) != "pg2kinesis" {
		t.Fatalf("ExecStart runs %s, want an absolute path to pg2kinesis", words[0])
	}
	env := parseEnvFile(t, filepath.Join(etcDir, "systemd/pg2kinesis.env"))
	for _, name := range pathSettings {
		if _, ok := env[config.EnvName(name)]; ok {
			env[config.EnvName(name)] = secretFile(t, name, "x\n")
		}
	}
	cfg := settings(t, words[1:], env)

	if cfg.SpoolDir != cache {
		t.Errorf("--spool-dir %s, want the cache directory: pgoutput spools there, and /tmp may be in memory", cfg.SpoolDir)
	}
	if !cfg.PG.IAMAuth && cfg.PG.PasswordFile == "" {
		t.Error("neither a password file (the credential) nor --pg-iam-auth")
	}
	stop, err := time.ParseDuration(u.one(t, "Service", "TimeoutStopSec"))
	if err != nil || stop <= cfg.ShutdownTimeout {
		t.Errorf("TimeoutStopSec=%s should exceed --shutdown-timeout %s, or systemd kills pg2kinesis before it confirms its position",
			u.one(t, "Service", "TimeoutStopSec"), cfg.ShutdownTimeout)
	}
}

// systemd's own check of the unit, where systemd-analyze is installed: an
// unknown directive or a bad value is a warning on its standard error.
func TestEtcSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze")
	}
	data, err := os.ReadFile(filepath.Join(etcDir, "systemd/pg2kinesis.service"))
	if err != nil {
		t.Fatal(err)
	}
	// verify wants the program to exist: the binary TestMain built.
	unit := secretFile(t, "pg2kinesis.service", strings.ReplaceAll(string(data), "/usr/local/bin/pg2kinesis", binary))
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	// Only what it says of this file counts: a host may lack units the
	// example does not name, or a bus, and say so.
	if err != nil || bytes.Contains(out, []byte(unit)) {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// etc/README.md and the Deploying section of docs/operations.md link
// every example, so that none is shipped unexplained.
func TestEtcReadmeListsEveryFile(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(etcDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	ops, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, deploying, ok := strings.Cut(string(ops), "\n## Deploying\n")
	if !ok {
		t.Fatal("docs/operations.md has no Deploying section")
	}
	err = filepath.WalkDir(etcDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "README.md" {
			return err
		}
		rel, _ := filepath.Rel(etcDir, path)
		if !strings.Contains(string(readme), "]("+rel+")") {
			t.Errorf("etc/README.md does not link %s", rel)
		}
		if dir := filepath.Dir(rel); !strings.Contains(deploying, "](../etc/"+rel+")") && !strings.Contains(deploying, "](../etc/"+dir+")") && rel != "pg2kinesis.yaml" {
			t.Errorf("the Deploying section of docs/operations.md links neither etc/%s nor its directory", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
