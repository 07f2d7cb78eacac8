// Package kinesisproxy is a misbehaving Kinesis endpoint for tests: a
// loopback HTTP proxy in front of kinesalite that, on PutRecords, fails
// chosen records (they are really not stored: the proxy takes them out of
// the request and splices failures into the response), throttles whole
// calls, and drops connections before or after forwarding. Kinesalite never
// does any of these by itself.
package kinesisproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Fault is what the proxy does to one PutRecords call.
type Fault int

const (
	Pass       Fault = iota // forward unchanged
	FailSome                // fail the records chosen by FailRecord
	Throttle                // answer ProvisionedThroughputExceededException, store nothing
	DropBefore              // close the connection without forwarding
	DropAfter               // forward (records are stored), then close without answering
)

// Stats counts what the proxy did.
type Stats struct {
	Calls, Passed, FailedRecords, Throttled, DroppedBefore, DroppedAfter int
	// With ResolveARN: requests of any operation naming the stream by
	// StreamARN alone, and by StreamName.
	ByARN, ByName int
}

// Proxy is a running fault proxy. Set Plan and FailRecord before traffic
// starts; they are called under the proxy's lock.
type Proxy struct {
	URL string

	// Plan picks the fault for the n-th PutRecords call (0-based).
	Plan func(n int) Fault
	// FailRecord picks, for a FailSome call, which records (by index in
	// the request) fail.
	FailRecord func(call, i int) bool
	// ResolveARN, when set, answers StreamARN as Kinesis does, which
	// kinesalite cannot (it drops the field, then wants a StreamName): a
	// request naming its stream by StreamARN alone goes on with the name
	// ResolveARN gives, or is answered ResourceNotFoundException.
	ResolveARN func(arn string) (name string, ok bool)

	upstream string
	client   *http.Transport // no environment proxy: loopback only
	srv      *httptest.Server
	mu       sync.Mutex
	stats    Stats
}

// Start runs a proxy to upstream (kinesalite's URL) on 127.0.0.1 until the
// test ends.
func Start(t testing.TB, upstream string) *Proxy {
	t.Helper()
	p := &Proxy{upstream: strings.TrimSuffix(upstream, "/"), client: &http.Transport{}, Plan: func(int) Fault { return Pass }}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.srv.Listener = l
	p.srv.Start()
	p.URL = p.srv.URL
	t.Cleanup(func() {
		p.srv.Close()
		p.client.CloseIdleConnections()
	})
	return p
}

// Stats returns a copy of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

type putRecordsRequest struct {
	Records    []json.RawMessage `json:"Records"`
	StreamName string            `json:"StreamName,omitempty"`
	StreamARN  string            `json:"StreamARN,omitempty"`
}

type putRecordsResponse struct {
	FailedRecordCount int               `json:"FailedRecordCount"`
	Records           []json.RawMessage `json:"Records"`
	EncryptionType    string            `json:"EncryptionType,omitempty"`
}

var throttledEntry = json.RawMessage(`{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard (injected by kinesisproxy)"}`)

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if p.ResolveARN != nil {
		if body, err = p.resolveARN(body); err != nil {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"__type":"ResourceNotFoundException","message":%q}`, err.Error())
			return
		}
	}
	if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutRecords") {
		p.forwardAndCopy(w, r, body)
		return
	}
	p.mu.Lock()
	call := p.stats.Calls
	p.stats.Calls++
	fault := p.Plan(call)
	p.mu.Unlock()

	switch fault {
	case Throttle:
		p.count(func(s *Stats) { s.Throttled++ })
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded (injected by kinesisproxy)"}`)
	case DropBefore:
		p.count(func(s *Stats) { s.DroppedBefore++ })
		hangUp(w)
	case DropAfter:
		if resp, err := p.forward(r, body); err == nil {
			resp.Body.Close()
		}
		p.count(func(s *Stats) { s.DroppedAfter++ })
		hangUp(w)
	case FailSome:
		p.failSome(w, r, body, call)
	default:
		p.count(func(s *Stats) { s.Passed++ })
		p.forwardAndCopy(w, r, body)
	}
}

// failSome forwards the records that succeed and answers as Kinesis does
// for a partial failure: one entry per request record, in order.
func (p *Proxy) failSome(w http.ResponseWriter, r *http.Request, body []byte, call int) {
	var req putRecordsRequest
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, "kinesisproxy: "+err.Error(), http.StatusBadRequest)
		return
	}
	failed := make([]bool, len(req.Records))
	var keep []json.RawMessage
	p.mu.Lock()
	for i, rec := range req.Records {
		failed[i] = p.FailRecord != nil && p.FailRecord(call, i)
		if !failed[i] {
			keep = append(keep, rec)
		}
	}
	p.mu.Unlock()
	var upstream putRecordsResponse
	if len(keep) > 0 {
		fwd := req
		fwd.Records = keep
		b, _ := json.Marshal(fwd)
		resp, err := p.forward(r, b)
		if err != nil {
			hangUp(w)
			return
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			w.WriteHeader(resp.StatusCode)
			w.Write(rb)
			return
		}
		if err := json.Unmarshal(rb, &upstream); err != nil || len(upstream.Records) != len(keep) {
			http.Error(w, "kinesisproxy: unexpected upstream answer", http.StatusBadGateway)
			return
		}
	}
	out := putRecordsResponse{FailedRecordCount: upstream.FailedRecordCount, EncryptionType: upstream.EncryptionType}
	j := 0
	for i := range req.Records {
		if failed[i] {
			out.Records = append(out.Records, throttledEntry)
			out.FailedRecordCount++
			continue
		}
		out.Records = append(out.Records, upstream.Records[j])
		j++
	}
	p.count(func(s *Stats) { s.FailedRecords += out.FailedRecordCount - upstream.FailedRecordCount })
	b, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Write(b)
}

// resolveARN rewrites a request naming its stream by StreamARN alone to
// name it by StreamName, and counts how requests name their stream.
func (p *Proxy) resolveARN(body []byte) ([]byte, error) {
	var req map[string]json.RawMessage
	if json.Unmarshal(body, &req) != nil {
		return body, nil // not JSON: kinesalite answers it
	}
	raw, byARN := req["StreamARN"]
	_, byName := req["StreamName"]
	if byName {
		p.count(func(s *Stats) { s.ByName++ })
	}
	if byName || !byARN {
		return body, nil
	}
	var arn string
	_ = json.Unmarshal(raw, &arn)
	name, ok := p.ResolveARN(arn)
	if !ok {
		return nil, fmt.Errorf("stream %s not found (kinesisproxy)", arn)
	}
	p.count(func(s *Stats) { s.ByARN++ })
	delete(req, "StreamARN")
	req["StreamName"], _ = json.Marshal(name)
	return json.Marshal(req)
}

func (p *Proxy) count(f func(*Stats)) {
	p.mu.Lock()
	f(&p.stats)
	p.mu.Unlock()
}

func (p *Proxy) forward(r *http.Request, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = r.Header.Clone()
	req.Header.Del("Content-Length")
	return p.client.RoundTrip(req)
}

func (p *Proxy) forwardAndCopy(w http.ResponseWriter, r *http.Request, body []byte) {
	resp, err := p.forward(r, body)
	if err != nil {
		hangUp(w)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// hangUp closes the client's connection without an answer.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
