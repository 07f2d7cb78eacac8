package testenv

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Kinesalite is a kinesalite of the test's own, which it may kill and
// restart: its streams and records are kept in a directory, so they
// outlive the process as a real stream outlives an outage.
type Kinesalite struct {
	Endpoint string

	port   int
	dir    string
	script string
	log    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartKinesalite starts a kinesalite on a free loopback port with
// scripts/kinesalite.js (whose node_modules `make services` installs) and
// kills it when the test ends.
func StartKinesalite(t testing.TB) *Kinesalite {
	t.Helper()
	script, err := repoFile("scripts/kinesalite.js")
	if err == nil {
		_, err = repoFile("node_modules/kinesalite/package.json")
	}
	if err == nil {
		_, err = exec.LookPath("node")
	}
	if err != nil {
		unavailable(t, "node with kinesalite", err)
	}
	dir := t.TempDir()
	k := &Kinesalite{port: freePort(t), dir: filepath.Join(dir, "data"), script: script, log: filepath.Join(dir, "kinesalite.log")}
	k.Endpoint = "http://127.0.0.1:" + strconv.Itoa(k.port)
	k.Start(t)
	t.Cleanup(func() { k.Kill(t) })
	return k
}

// Start starts the server on its port and data, and waits until it answers.
func (k *Kinesalite) Start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(k.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	k.cmd = exec.Command("node", k.script, strconv.Itoa(k.port), k.dir)
	k.cmd.Stdout, k.cmd.Stderr = logf, logf
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("start kinesalite: %v", err)
	}
	k.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { _ = cmd.Wait(); close(exited) }(k.cmd, k.exited)
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(k.port)), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-k.exited:
			t.Fatalf("kinesalite exited at start; log:\n%s", k.readLog())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("kinesalite does not answer on port %d after 30s; log:\n%s", k.port, k.readLog())
		}
	}
}

// Kill kills the server with SIGKILL, as a crash does, and waits until it
// is gone. Killing a stopped server does nothing.
func (k *Kinesalite) Kill(t testing.TB) {
	t.Helper()
	select {
	case <-k.exited:
		return
	default:
	}
	_ = k.cmd.Process.Kill()
	select {
	case <-k.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("kinesalite (pid %d) still runs 10s after SIGKILL", k.cmd.Process.Pid)
	}
}

func (k *Kinesalite) readLog() string {
	b, _ := os.ReadFile(k.log)
	return string(b)
}

// repoFile finds rel in the repository that holds the working directory
// (a test runs in its package's directory).
func repoFile(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, rel)
			if _, err := os.Stat(p); err != nil {
				return "", err
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
