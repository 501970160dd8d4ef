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
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestFlagsDefaultsAre05s(t *testing.T) {
	c, err := parseFlags([]string{"--election=elect-nginx-deploy"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	hostname, _ := os.Hostname()
	if c.namespace != "default" || c.ttl != 10*time.Second || c.id != hostname || c.httpAddr != "" || c.inCluster || c.leadFile != "" {
		t.Errorf("defaults: %+v", c)
	}
	c, err = parseFlags([]string{
		"--election=e", "--election-namespace=ns", "--id=a", "--ttl=3s",
		"--use-cluster-credentials", "--http=0.0.0.0:4444", "--kubeconfig=k", "--lead-file=f",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		election: "e", namespace: "ns", id: "a", ttl: 3 * time.Second, inCluster: true,
		httpAddr: "0.0.0.0:4444", kubeconfig: "k", leadFile: "f",
	}
	if c != want {
		t.Errorf("got %+v, want %+v", c, want)
	}
	for _, args := range [][]string{nil, {"--election="}, {"--election=e", "--id="}, {"--election=e", "--ttl=3ns"}, {"--election=e", "x"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

func TestTimingsAre05s(t *testing.T) {
	lease, renew, retry := timings(10 * time.Second)
	if lease != 10*time.Second || renew != 5*time.Second || retry != 2500*time.Millisecond {
		t.Errorf("timings(10s) = %v, %v, %v", lease, renew, retry)
	}
}

func TestHTTPAnswersEveryPathWithTheLeader(t *testing.T) {
	s := &state{out: io.Discard}
	srv := httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	defer srv.Close()
	get := func(method, path string) string {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s: status %d", method, path, resp.StatusCode)
		}
		return string(body)
	}
	if got := get("GET", "/"); got != `{"name":""}` {
		t.Errorf("no leader: %s", got)
	}
	s.setLeader("pod-a")
	for _, p := range []string{"/", "/healthz", "/isLeader", "/a/b?c=d"} {
		if got := get("GET", p); got != `{"name":"pod-a"}` {
			t.Errorf("GET %s: %s", p, got)
		}
	}
	if got := get("POST", "/"); got != `{"name":"pod-a"}` {
		t.Errorf("POST /: %s", got)
	}
}

func TestLeaderLinesOnStdout(t *testing.T) {
	var out bytes.Buffer
	s := &state{out: &out}
	s.setLeader("pod-a")
	s.setLeader("")
	if got := out.String(); got != "pod-a is the leader\n is the leader\n" {
		t.Errorf("stdout %q", got)
	}
}

func TestLeadFileReportsOverlapAndTakesTheLockOnceFree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lead")
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	// Another holder: a separate open file description, as another
	// process (the chaos actor) would have.
	other, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}

	lf, err := openLeadFile(path, log)
	if err != nil {
		t.Fatal(err)
	}
	lf.lead("pod-a")
	if !strings.Contains(logs.String(), `level=ERROR msg="`+MsgOverlap+`" path=`+path+` id=pod-a`) {
		t.Fatalf("no overlap logged:\n%s", logs.String())
	}
	// Freed: the leader takes it.
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), MsgLocked) {
		if time.Now().After(deadline) {
			t.Fatalf("lead file not locked once free:\n%s", logs.String())
		}
		time.Sleep(retryLock)
	}
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != syscall.EWOULDBLOCK {
		t.Fatalf("the leader does not hold the lock: flock = %v", err)
	}
	lf.stop()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("the lock was not released on stop: %v", err)
	}
	if !strings.Contains(logs.String(), MsgUnlocked) {
		t.Errorf("no unlock logged:\n%s", logs.String())
	}
	// Another tenure, the lock held: no overlap logged, the lock taken.
	_ = syscall.Flock(int(other.Fd()), syscall.LOCK_UN)
	before := strings.Count(logs.String(), MsgOverlap)
	lf.lead("pod-a")
	if n := strings.Count(logs.String(), MsgOverlap); n != before {
		t.Errorf("overlap logged on a free lock:\n%s", logs.String())
	}
	lf.stop()
}

// syncBuffer is a bytes.Buffer for a logger and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
