// Command benchwait waits until a running pg2kinesis has acknowledged
// every change up to an LSN, as its /metrics report it
// (pg2kinesis_flushed_lsn), and exits 0; it exits 1 if the process ends
// first, its /metrics have no such metric, or the time runs out (saying
// what the last poll found), and 2 on bad flags. bench/run.sh times its
// pg2kinesis runs with it:
//
//	benchwait -pid 1234 -log /tmp/bench.log -lsn 0/5F5E100
//
// Why a program and not a shell loop: the poll runs 20 times a second on
// the cores the walsender needs, and pg_recvlogical, the ceiling, pays
// for no poll (it ends itself, at --endpos). A shell loop starts a process
// per poll, or reads the response a byte at a time (bash's read on a
// socket); either took a few % of the walsender's core. One process
// reusing one connection takes far less.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pglogrepl"
)

func main() {
	pid := flag.Int("pid", 0, "the pg2kinesis process to watch")
	logFile := flag.String("log", "", "its log, which names its metrics address")
	lsn := flag.String("lsn", "", "the LSN to wait for, as X/Y")
	every := flag.Duration("every", 50*time.Millisecond, "how often to poll")
	timeout := flag.Duration("timeout", 10*time.Minute, "how long to wait at most")
	flag.Parse()
	end, err := pglogrepl.ParseLSN(*lsn)
	if err != nil || *pid <= 0 || *logFile == "" {
		fmt.Fprintln(os.Stderr, "benchwait: want -pid PID -log FILE -lsn X/Y")
		os.Exit(2)
	}
	if err := wait(*pid, *logFile, uint64(end), *every, *timeout); err != nil {
		fmt.Fprintf(os.Stderr, "benchwait: %v\n", err)
		os.Exit(1)
	}
}

func wait(pid int, logFile string, end uint64, every, timeout time.Duration) error {
	// No gzip: pg2kinesis would spend CPU compressing each response.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 5 * time.Second}
	deadline := time.Now().Add(timeout)
	url := ""
	var last error // why the last poll found nothing, for the timeout's message
	for ; time.Now().Before(deadline); time.Sleep(every) {
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			return fmt.Errorf("pg2kinesis (pid %d) exited; see %s", pid, logFile)
		}
		if url == "" {
			addr, err := metricsAddr(logFile)
			if err != nil {
				return err
			}
			if addr == "" {
				last = fmt.Errorf("%s names no metrics address yet", logFile)
				continue
			}
			url = "http://" + addr + "/metrics"
		}
		flushed, err := poll(client, url)
		if errors.Is(err, errNoMetric) {
			return fmt.Errorf("%s: %w", url, err) // the wrong process, or a pg2kinesis without it
		}
		if err != nil {
			last = err // starting, or stopping: the pid check above tells
			continue
		}
		if flushed >= end {
			return nil
		}
		last = fmt.Errorf("flushed %s", pglogrepl.LSN(flushed))
	}
	return fmt.Errorf("pg2kinesis (pid %d) has not flushed %s after %s (last: %v); see %s", pid, pglogrepl.LSN(end), timeout, last, logFile)
}

var servingRE = regexp.MustCompile(`msg="serving metrics and health checks" addr=(\S+)`)

// metricsAddr returns the metrics address the log names, or "" before it
// names one.
func metricsAddr(logFile string) (string, error) {
	b, err := os.ReadFile(logFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if m := servingRE.FindSubmatch(b); m != nil {
		return string(m[1]), nil
	}
	return "", nil
}

func poll(client *http.Client, url string) (uint64, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return flushedLSN(body)
}

var errNoMetric = errors.New("no pg2kinesis_flushed_lsn in /metrics")

// flushedLSN finds pg2kinesis_flushed_lsn in a Prometheus text page. A
// gauge is a float64, which holds any LSN a test or bench reaches exactly.
func flushedLSN(page []byte) (uint64, error) {
	const name = "\npg2kinesis_flushed_lsn "
	i := bytes.Index(page, []byte(name))
	if i < 0 {
		return 0, errNoMetric
	}
	rest := page[i+len(name):]
	if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	v, err := strconv.ParseFloat(string(rest), 64)
	if err != nil || !(v >= 0) || math.IsInf(v, 1) { // NaN too
		return 0, fmt.Errorf("pg2kinesis_flushed_lsn %q: not an LSN", rest)
	}
	return uint64(v), nil
}
