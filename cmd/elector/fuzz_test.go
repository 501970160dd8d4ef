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

// Fuzz targets for everything the sidecar parses from outside: the
// command line and environment, the watchdog's heartbeat lines, bearer
// tokens, and HTTP requests. Run one with, e.g.,
//
//	go test -run '^$' -fuzz FuzzParseConfig ./cmd/elector
//
// Their seeds run with the normal tests.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/fake"
)

// FuzzParseConfig: any command line and environment either parses into a
// configuration the library accepts, or fails with one line and a usage
// or config exit code. Arguments are separated by NUL in args.
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []struct{ args, podName, podNS, saNS string }{
		{"--election=my-app", "", "", ""},
		{"--election\x00elect-nginx\x00--http\x00:4444\x00--id\x00me\x00--ttl\x0020s", "", "", ""},
		{"--election=x\x00--ttl=3s\x00--grace=500ms\x00--\x00sleep\x001", "", "", ""},
		{"--election=x\x00--leader-label=elector.dev/leader=true", "pod-a", "team-a", ""},
		{"--election=x\x00--ttl=9223372036s", "", "", ""},
		{"--election=x\x00--ttl=-3s", "", "", ""},
		{"--election=x\x00--grace=1ns\x00--\x00sleep", "", "", ""},
		{"--election=x\x00--http=[::1]:0", "", "", "ns\n"},
		{"--election=x\x00--id=" + strings.Repeat("é", 600), "", "", ""},
		{"--election=x\x00--log-level=DEBUG+2", "", "", ""},
		{"--election=x\x00--\x00", "", "", ""},
		{"-h", "", "", ""},
		{"--election=x\x00--events=T\x00--skip-permission-check=0", "", "", ""},
		{"--election=a.b\x00--election-namespace=Kube-System", "", "", ""},
	} {
		f.Add(seed.args, seed.podName, seed.podNS, seed.saNS)
	}
	f.Fuzz(func(t *testing.T, args, podName, podNS, saNS string) {
		var argv []string
		if args != "" {
			argv = strings.Split(args, "\x00")
		}
		env := environment{
			getenv: func(k string) string {
				switch k {
				case envPodName:
					return podName
				case envPodNamespace:
					return podNS
				}
				return ""
			},
			readFile: func(name string) ([]byte, error) {
				if name == serviceAccountNamespaceFile && saNS != "" {
					return []byte(saNS), nil
				}
				return nil, fs.ErrNotExist
			},
			hostname: func() (string, error) { return "host-1", nil },
			lookPath: func(name string) (string, error) {
				if name == "sleep" {
					return "/bin/sleep", nil
				}
				return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
			},
		}
		c, err := parseConfig(argv, env)
		switch {
		case errors.Is(err, errHelp) || errors.Is(err, errVersion):
			return
		case err != nil:
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("parseConfig(%q) = %T %v, want *usageError", argv, err, err)
			}
			if ue.code != ExitUsage && ue.code != ExitConfig {
				t.Fatalf("parseConfig(%q): exit code %d, want %d or %d", argv, ue.code, ExitUsage, ExitConfig)
			}
			if !strings.HasPrefix(ue.Error(), "elector: ") {
				t.Fatalf("parseConfig(%q): message %q does not start with \"elector: \"", argv, ue.Error())
			}
			return
		}
		// Accepted: the library must accept it too, so that the sidecar
		// never fails later on what it accepted at start.
		if c.identity == "" || len(c.identity) > maxIdentity {
			t.Fatalf("parseConfig(%q) accepted identity of %d bytes", argv, len(c.identity))
		}
		if c.grace <= 0 || c.grace >= c.stopGrace || c.heartbeat <= 0 {
			t.Fatalf("parseConfig(%q) accepted grace %v, stop budget %v, heartbeat %v", argv, c.grace, c.stopGrace, c.heartbeat)
		}
		cfg := elector.Config{
			Leases: fake.NewLeases().Leases(c.namespace), Namespace: c.namespace, Name: c.election, Identity: c.identity,
			LeaseDuration: c.leaseDuration, RenewDeadline: c.renewDeadline, RetryPeriod: c.retryPeriod,
			StopGrace: c.stopGrace,
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("parseConfig(%q) accepted a configuration the library rejects: %v", argv, err)
		}
	})
}

// FuzzHeartbeat: the watchdog reads heartbeat lines from a pipe. Any bytes
// end in a clean stop (a closed channel), never a panic, and a parsed
// heartbeat never grants more time than the elector sent.
func FuzzHeartbeat(f *testing.F) {
	for _, s := range []string{"4873\n", "0\n", "-1\n", "9223372036854775807\n", "abc\n", "12 34\n", "\n", "1e3\n", "+5\n", "77", strings.Repeat("9", 70000) + "\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		clk := clocktesting.NewFakeClock(time.Unix(0, 0))
		beats := readBeats(strings.NewReader(input), clk, slog.New(slog.DiscardHandler))
		n := 0
		for range beats {
			n++
		}
		if n > strings.Count(input, "\n")+1 {
			t.Fatalf("%d heartbeats from %d lines", n, strings.Count(input, "\n")+1)
		}
		for _, line := range strings.Split(input, "\n") {
			d, err := parseBeat(line)
			if err != nil {
				continue
			}
			if back, err := parseBeat(formatBeat(d)); err != nil || back > d {
				t.Fatalf("formatBeat(%v) = %q parses to %v, %v: more time than sent", d, formatBeat(d), back, err)
			}
		}
	})
}

// FuzzUsernameFromToken: bearer tokens come from files and kubeconfigs;
// any string yields a name or "", never a panic.
func FuzzUsernameFromToken(f *testing.F) {
	for _, s := range []string{"", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bnM6c2EifQ.sig", "..", "x.!!!.y", "a.e30.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		_ = usernameFromToken(token)
	})
}

// fuzzView is a leaderView with fixed answers.
type fuzzView struct {
	leader elector.Leader
	synced bool
}

func (v fuzzView) Leader() elector.Leader    { return v.leader }
func (v fuzzView) Synced() bool              { return v.synced }
func (v fuzzView) Check(*http.Request) error { return nil }
func (v fuzzView) Err() error                { return nil }
func (v fuzzView) Subscribe(ctx context.Context) <-chan elector.Leader {
	ch := make(chan elector.Leader, 1)
	ch <- v.leader
	context.AfterFunc(ctx, func() { close(ch) })
	return ch
}

// cancelOnEvent is a recorder that ends the request once the body holds
// an event.
type cancelOnEvent struct {
	*httptest.ResponseRecorder
	cancel context.CancelFunc
}

func (c cancelOnEvent) Write(p []byte) (int, error) {
	n, err := c.ResponseRecorder.Write(p)
	if strings.Contains(c.Body.String(), "\n\n") {
		c.cancel()
	}
	return n, err
}

func (c cancelOnEvent) WriteString(s string) (int, error) { return c.Write([]byte(s)) }

// FuzzHTTP: any request (method, target, header, body) to the sidecar's
// endpoints, with any leader identity, gets a well-formed answer: the
// 0.5-compatible {"name":...} on unknown paths, valid JSON on /leader,
// a Server-Sent Events stream on /watch.
func FuzzHTTP(f *testing.F) {
	for _, s := range []struct{ method, target, header, body, identity string }{
		{"GET", "/", "", "", "pod-a"},
		{"POST", "/anything?x=1", "Content-Type: text/plain", "hello", `pod-"a"`},
		{"GET", "/leader", "Accept: */*", "", "\u2028<script>"},
		{"GET", "/watch", "Last-Event-ID: 7", "", "pod-b"},
		{"HEAD", "/healthz", "", "", ""},
		{"GET", "/readyz", "", "", "\xff\xfe"},
		{"DELETE", "//..%2f..", "X: " + strings.Repeat("y", 1000), "", "x"},
		{"GET", "/metrics", "Accept: application/openmetrics-text", "", "pod-a"},
	} {
		f.Add(s.method, s.target, s.header, s.body, s.identity)
	}
	reg := prometheus.NewRegistry()
	f.Fuzz(func(t *testing.T, method, target, header, body, identity string) {
		if !validMethod(method) || !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t") {
			return // not an HTTP request a server would parse
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: x\r\n" + header + "\r\n\r\n" + body)))
		if err != nil {
			return
		}
		// Requests end after 50ms; a /watch stream ends once it has sent
		// its first event (or after guard, failing below): with a
		// deadline alone, a loaded machine could end it before the
		// handler took the leader from its subscription.
		timeout := 50 * time.Millisecond
		if req.URL.Path == "/watch" {
			timeout = guard
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req = req.WithContext(ctx)
		req.RemoteAddr = "127.0.0.1:1"
		v := fuzzView{leader: elector.Leader{Identity: identity, Self: identity == "me", Token: 3, Since: time.Unix(1, 0)}, synced: len(identity)%2 == 0}
		h := &handlers{view: v, identity: "me", gatherer: reg, clock: clocktesting.NewFakeClock(time.Unix(0, 0))}
		rr := httptest.NewRecorder()
		var w http.ResponseWriter = rr
		if req.URL.Path == "/watch" {
			w = cancelOnEvent{rr, cancel}
		}
		h.mux().ServeHTTP(w, req)

		switch path := req.URL.Path; {
		case rr.Code >= 500 && path != "/readyz" && path != "/healthz":
			t.Fatalf("%s %s = %d %q", method, target, rr.Code, rr.Body.String())
		case rr.Code == http.StatusOK && path == "/leader":
			var got leaderJSON
			if err := json.Unmarshal(rr.Body.Bytes(), &got); err != nil {
				t.Fatalf("/leader body %q: %v", rr.Body.String(), err)
			}
			if utf8.ValidString(identity) && got.Name != identity {
				t.Fatalf("/leader name %q, want %q", got.Name, identity)
			}
		case rr.Code == http.StatusOK && path == "/watch":
			if ct := rr.Header().Get("Content-Type"); ct != "text/event-stream" {
				t.Fatalf("/watch Content-Type %q", ct)
			}
			if !strings.Contains(rr.Body.String(), "event: leader\ndata: {") {
				t.Fatalf("/watch sent no leader event: %q", rr.Body.String())
			}
		case rr.Code == http.StatusOK && !knownPath(path):
			var got struct {
				Name *string `json:"name"`
			}
			dec := json.NewDecoder(strings.NewReader(rr.Body.String()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil || got.Name == nil {
				t.Fatalf("%s %s body %q, want {\"name\":...}: %v", method, target, rr.Body.String(), err)
			}
			if utf8.ValidString(identity) && *got.Name != identity {
				t.Fatalf("name %q, want %q", *got.Name, identity)
			}
		}
	})
}

func knownPath(p string) bool {
	switch p {
	case "/leader", "/healthz", "/readyz", "/watch", "/metrics":
		return true
	}
	return false
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, r := range m {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}
