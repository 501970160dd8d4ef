/*
Copyright 2026 The elector Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/testwait"
)

// fakeView is a controllable leaderView. Subscribe behaves like the
// library's: current value first, latest wins, closed when ctx ends.
type fakeView struct {
	mu       sync.Mutex
	leader   elector.Leader
	synced   bool
	checkErr error
	err      error
	subs     map[chan elector.Leader]struct{}
}

func (f *fakeView) Leader() elector.Leader {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}

func (f *fakeView) Synced() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.synced
}

func (f *fakeView) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *fakeView) Check(*http.Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checkErr
}

func (f *fakeView) Subscribe(ctx context.Context) <-chan elector.Leader {
	ch := make(chan elector.Leader, 1)
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[chan elector.Leader]struct{}{}
	}
	f.subs[ch] = struct{}{}
	ch <- f.leader
	f.mu.Unlock()
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		delete(f.subs, ch)
		close(ch)
		f.mu.Unlock()
	})
	return ch
}

func (f *fakeView) set(l elector.Leader) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leader = l
	for ch := range f.subs {
		select {
		case <-ch:
		default:
		}
		ch <- l
	}
}

var t0 = time.Date(2026, 3, 3, 14, 39, 9, 500, time.UTC)

func newTestHandlers(v *fakeView) (*handlers, *clocktesting.FakeClock) {
	fc := clocktesting.NewFakeClock(t0)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	return &handlers{view: v, identity: "pod-b", gatherer: reg, clock: fc}, fc
}

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(method, path, nil))
	return rr
}

// GET / answers exactly like k8s.gcr.io/leader-elector:0.5, on every path
// and method, plus a Content-Type.
func TestHTTPName(t *testing.T) {
	v := &fakeView{}
	h, _ := newTestHandlers(v)
	m := h.mux()
	for _, tc := range []struct{ method, path string }{{"GET", "/"}, {"POST", "/"}, {"GET", "/anything/else"}, {"PUT", "/x?y=1"}} {
		rr := get(t, m, tc.method, tc.path)
		if rr.Code != http.StatusOK || rr.Body.String() != `{"name":""}` {
			t.Errorf("%s %s (no leader) = %d %q, want 200 {\"name\":\"\"}", tc.method, tc.path, rr.Code, rr.Body.String())
		}
		if ct := rr.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
	}
	// A follower reports the current leader, not itself.
	v.set(elector.Leader{Identity: `pod-"a"`, Token: 3})
	if rr := get(t, m, "GET", "/"); rr.Body.String() != `{"name":"pod-\"a\""}` {
		t.Errorf("GET / = %q", rr.Body.String())
	}
}

// In migration mode the acting leader is the old lock's holder: a 0.5
// replica while it holds it, and this replica only once it holds both.
func TestHTTPNamesTheOldLocksHolderInMigrationMode(t *testing.T) {
	v := &fakeView{}
	h, _ := newTestHandlers(v)
	old := "old-0"
	h.oldHolder = func() string { return old }
	m := h.mux()
	v.set(elector.Leader{Identity: "pod-b", Self: true, Token: 2}) // holds the Lease, waits for the old lock
	if rr := get(t, m, "GET", "/"); rr.Body.String() != `{"name":"old-0"}` {
		t.Errorf("GET / = %q, want the old lock's holder", rr.Body.String())
	}
	if rr := get(t, m, "GET", "/leader"); !strings.Contains(rr.Body.String(), `"name":"old-0","isLeader":false`) {
		t.Errorf("/leader = %s, want old-0 and not leading", rr.Body.String())
	}
	old = "pod-b" // took the old lock too
	if rr := get(t, m, "GET", "/leader"); !strings.Contains(rr.Body.String(), `"name":"pod-b","isLeader":true`) {
		t.Errorf("/leader = %s, want pod-b leading", rr.Body.String())
	}
	old = "" // released, or not read yet: the Lease names the leader, who does not act yet
	if rr := get(t, m, "GET", "/"); rr.Body.String() != `{"name":"pod-b"}` {
		t.Errorf("GET / = %q, want the Lease's holder", rr.Body.String())
	}
	if rr := get(t, m, "GET", "/leader"); !strings.Contains(rr.Body.String(), `"name":"pod-b","isLeader":false`) {
		t.Errorf("/leader = %s, want pod-b not acting without the old lock", rr.Body.String())
	}
}

func TestHTTPLeader(t *testing.T) {
	v := &fakeView{}
	h, _ := newTestHandlers(v)
	m := h.mux()
	rr := get(t, m, "GET", "/leader")
	if got, want := rr.Body.String(), `{"name":"","isLeader":false,"since":"","token":0,"expiry":"","identity":"pod-b"}`+"\n"; got != want {
		t.Errorf("no leader: %s, want %s", got, want)
	}
	v.set(elector.Leader{Identity: "pod-b", Self: true, Since: t0, Token: 7, Expiry: t0.Add(10 * time.Second)})
	rr = get(t, m, "GET", "/leader")
	if got, want := rr.Body.String(), `{"name":"pod-b","isLeader":true,"since":"2026-03-03T14:39:09.0000005Z","token":7,"expiry":"2026-03-03T14:39:19.0000005Z","identity":"pod-b"}`+"\n"; got != want {
		t.Errorf("leader: %s, want %s", got, want)
	}
	if ct := rr.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
}

func TestHTTPProbes(t *testing.T) {
	v := &fakeView{}
	h, _ := newTestHandlers(v)
	m := h.mux()
	if rr := get(t, m, "GET", "/readyz"); rr.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz before sync = %d", rr.Code)
	}
	v.mu.Lock()
	v.synced = true // a follower: ready without leading
	v.mu.Unlock()
	if rr := get(t, m, "GET", "/readyz"); rr.Code != http.StatusOK || rr.Body.String() != "ok\n" {
		t.Errorf("readyz after sync = %d %q", rr.Code, rr.Body.String())
	}
	if rr := get(t, m, "GET", "/healthz"); rr.Code != http.StatusOK {
		t.Errorf("healthz = %d", rr.Code)
	}
	v.mu.Lock()
	v.checkErr = errors.New("elector: leader has not renewed")
	v.mu.Unlock()
	if rr := get(t, m, "GET", "/healthz"); rr.Code != http.StatusInternalServerError || !strings.Contains(rr.Body.String(), "not renewed") {
		t.Errorf("failing healthz = %d %q", rr.Code, rr.Body.String())
	}
	if rr := get(t, m, "GET", "/metrics"); rr.Code != http.StatusOK || !strings.Contains(rr.Body.String(), "go_goroutines") {
		t.Errorf("metrics = %d, lacks go_goroutines", rr.Code)
	}
}

// sseReader reads Server-Sent Events one block at a time.
type sseReader struct{ r *bufio.Reader }

func (s sseReader) next(t *testing.T) []string {
	t.Helper()
	var lines []string
	var err error
	testwait.Call(t, "the next event of the stream", func() { lines, err = s.read() })
	if err != nil {
		t.Fatalf("reading stream after %q: %v", lines, err)
	}
	return lines
}

func (s sseReader) read() ([]string, error) {
	var lines []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return lines, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return lines, nil
		}
		lines = append(lines, line)
	}
}

func leaderEvent(t *testing.T, l leaderJSON) []string {
	t.Helper()
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	return []string{"event: leader", "data: " + string(b)}
}

// /watch sends the current state first, then each change and heartbeats,
// and its handler returns when the client goes away.
func TestHTTPWatch(t *testing.T) {
	v := &fakeView{leader: elector.Leader{Identity: "pod-a", Token: 1}}
	h, fc := newTestHandlers(v)
	handlerDone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(handlerDone)
		h.watch(w, r)
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/watch", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	s := sseReader{bufio.NewReader(resp.Body)}

	if got, want := s.next(t), leaderEvent(t, leaderJSON{Name: "pod-a", Token: 1, Identity: "pod-b"}); !equal(got, want) {
		t.Errorf("first event = %q, want %q", got, want)
	}
	v.set(elector.Leader{Identity: "pod-b", Self: true, Token: 2})
	if got, want := s.next(t), leaderEvent(t, leaderJSON{Name: "pod-b", IsLeader: true, Token: 2, Identity: "pod-b"}); !equal(got, want) {
		t.Errorf("change = %q, want %q", got, want)
	}
	fc.Step(sseHeartbeat)
	if got := s.next(t); !equal(got, []string{": heartbeat"}) {
		t.Errorf("heartbeat = %q", got)
	}

	cancel() // the client goes away
	select {
	case <-handlerDone:
	case <-time.After(10 * time.Second):
		t.Fatal("/watch handler did not return after the client went away")
	}
}

// In migration mode /watch follows the acting leader, the old lock's
// holder, which changes without the Lease.
func TestHTTPWatchFollowsTheOldLockInMigrationMode(t *testing.T) {
	v := &fakeView{leader: elector.Leader{Identity: "pod-b", Self: true, Token: 2}}
	h, fc := newTestHandlers(v)
	var mu sync.Mutex
	old := "old-0"
	h.oldHolder = func() string { mu.Lock(); defer mu.Unlock(); return old }
	srv := httptest.NewServer(http.HandlerFunc(h.watch))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/watch", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := sseReader{bufio.NewReader(resp.Body)}
	if got, want := s.next(t), leaderEvent(t, leaderJSON{Name: "old-0", Token: 2, Identity: "pod-b"}); !equal(got, want) {
		t.Errorf("first event = %q, want %q", got, want)
	}
	mu.Lock()
	old = "pod-b" // took the old lock
	mu.Unlock()
	waitForWaiter(t, fc)
	fc.Step(oldHolderPoll)
	if got, want := s.next(t), leaderEvent(t, leaderJSON{Name: "pod-b", IsLeader: true, Token: 2, Identity: "pod-b"}); !equal(got, want) {
		t.Errorf("after the old lock changed hands = %q, want %q", got, want)
	}
}

// Shutting the server down ends open /watch streams.
func TestServerShutdownEndsWatch(t *testing.T) {
	v := &fakeView{leader: elector.Leader{Identity: "pod-a"}}
	h, _ := newTestHandlers(v)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	srv := serve(ln, h.mux(), slog.New(slog.NewTextHandler(&logs, nil)))
	if !strings.Contains(logs.String(), `msg="Serving HTTP" addr=`+ln.Addr().String()) {
		t.Errorf("log lacks the listen address: %s", logs.String())
	}
	resp, err := http.Get("http://" + ln.Addr().String() + "/watch")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sseReader{bufio.NewReader(resp.Body)}.next(t)
	if err := srv.shutdown(10 * time.Second); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("stream did not end cleanly: %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
}

func equal(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}
