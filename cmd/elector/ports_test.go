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
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/elector-dev/elector/internal/testwait"
)

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// runUnreachable runs the sidecar with args against an API server that
// does not answer, until it has served HTTP and logged the outage; the
// returned stop ends it (as SIGTERM) and checks its exit code 0.
func runUnreachable(t *testing.T, args ...string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := newSyncBuffer(`msg="API server unreachable; waiting for it"`)
	done := make(chan int, 1)
	args = append([]string{"--kubeconfig=" + writeKubeconfig(t, "http://"+freeAddr(t), "x"), "--election=my-app"}, args...)
	go func() { done <- runWith(ctx, args, io.Discard, stderr, fakeEnv(nil), quickStartup) }()
	select {
	case <-stderr.seen:
	case code := <-done:
		cancel()
		t.Fatalf("exited with %d; stderr:\n%s", code, stderr.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("no outage logged within 30s; stderr:\n%s", stderr.String())
	}
	return func() {
		t.Helper()
		cancel()
		if code := testwait.Recv(t, done, "the sidecar to exit after SIGTERM"); code != ExitOK {
			t.Errorf("exit code %d after SIGTERM, want 0; stderr:\n%s", code, stderr.String())
		}
	}
}

type answer struct {
	code int
	body string // a substring of the body
}

// expect GETs each path of addr and compares the status and body.
func expect(t *testing.T, flag, addr string, want map[string]answer) {
	t.Helper()
	for path, w := range want {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Errorf("%s: GET %s: %v", flag, path, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != w.code || !strings.Contains(string(body), w.body) {
			t.Errorf("%s: GET %s = %d %q; want %d with %q", flag, path, resp.StatusCode, body, w.code, w.body)
		}
	}
}

// With --health-probe-bind-address and --metrics-bind-address, the probes
// and the metrics are served on their own listeners only, and --http
// keeps the 0.5 API.
func TestSeparateProbeAndMetricsAddresses(t *testing.T) {
	httpAddr, probeAddr, metricsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	stop := runUnreachable(t, "--http="+httpAddr, "--health-probe-bind-address="+probeAddr, "--metrics-bind-address="+metricsAddr)
	defer stop()

	expect(t, "--http", httpAddr, map[string]answer{
		"/":         {http.StatusOK, `{"name":""}`},
		"/anything": {http.StatusOK, `{"name":""}`},
		"/leader":   {http.StatusOK, `"identity":"host-1"`},
		"/healthz":  {http.StatusNotFound, "/healthz and /readyz: not served on this port; see --health-probe-bind-address"},
		"/readyz":   {http.StatusNotFound, "see --health-probe-bind-address"},
		"/metrics":  {http.StatusNotFound, "/metrics: not served on this port; see --metrics-bind-address"},
	})
	expect(t, "--health-probe-bind-address", probeAddr, map[string]answer{
		"/healthz": {http.StatusOK, "ok"},
		"/readyz":  {http.StatusServiceUnavailable, "lease not read yet: elector: unable to reach the API server"},
		"/":        {http.StatusNotFound, ""},
		"/leader":  {http.StatusNotFound, ""},
		"/metrics": {http.StatusNotFound, ""},
	})
	expect(t, "--metrics-bind-address", metricsAddr, map[string]answer{
		"/metrics": {http.StatusOK, metricRefused},
		"/":        {http.StatusNotFound, ""},
		"/healthz": {http.StatusNotFound, ""},
		"/readyz":  {http.StatusNotFound, ""},
		"/leader":  {http.StatusNotFound, ""},
	})
}

// "0" serves those endpoints nowhere; the others stay on --http. Without
// either flag everything is on --http, as in 0.5 and before the flags.
func TestProbeAndMetricsAddressesOff(t *testing.T) {
	httpAddr := freeAddr(t)
	stop := runUnreachable(t, "--http="+httpAddr, "--metrics-bind-address=0")
	expect(t, "--http", httpAddr, map[string]answer{
		"/":        {http.StatusOK, `{"name":""}`},
		"/healthz": {http.StatusOK, "ok"},
		"/readyz":  {http.StatusServiceUnavailable, "lease not read yet"},
		"/metrics": {http.StatusNotFound, "/metrics: not served (--metrics-bind-address=0)"},
	})
	stop()

	httpAddr = freeAddr(t)
	stop = runUnreachable(t, "--http="+httpAddr, "--health-probe-bind-address=0")
	expect(t, "--http", httpAddr, map[string]answer{
		"/":        {http.StatusOK, `{"name":""}`},
		"/healthz": {http.StatusNotFound, "/healthz and /readyz: not served (--health-probe-bind-address=0)"},
		"/readyz":  {http.StatusNotFound, "not served (--health-probe-bind-address=0)"},
		"/metrics": {http.StatusOK, metricRefused},
	})
	stop()

	httpAddr = freeAddr(t)
	stop = runUnreachable(t, "--http="+httpAddr)
	defer stop()
	expect(t, "--http", httpAddr, map[string]answer{
		"/":        {http.StatusOK, `{"name":""}`},
		"/healthz": {http.StatusOK, "ok"},
		"/readyz":  {http.StatusServiceUnavailable, "lease not read yet"},
		"/metrics": {http.StatusOK, metricRefused},
	})
}

// A taken port on either new flag: one line naming the flag, exit code 3,
// and no listener left open.
func TestProbeAndMetricsAddressInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, flag := range []string{"health-probe-bind-address", "metrics-bind-address"} {
		httpAddr := freeAddr(t)
		code, stderr := runForTest(t, "--election=my-app", "--http="+httpAddr, "--"+flag+"="+taken.Addr().String())
		if want := "elector: --" + flag + "=" + taken.Addr().String() + ": bind: address already in use\n"; code != ExitConfig || stderr != want {
			t.Errorf("exit code %d, stderr %q; want %d, %q", code, stderr, ExitConfig, want)
		}
		ln, err := net.Listen("tcp", httpAddr)
		if err != nil {
			t.Errorf("--http=%s still open after the failed start: %v", httpAddr, err)
			continue
		}
		ln.Close()
	}
}

// The probe and metrics listeners are bounded like --http's, with a
// connection cap of their own (they serve no streams).
func TestSideListenerLimits(t *testing.T) {
	h := &handlers{identity: "a", gatherer: newRegistry(), clock: nil}
	for name, mux := range map[string]http.Handler{
		"probes":  h.probesMux(h.healthz, h.readyz),
		"metrics": h.metricsMux(),
	} {
		if n, evicted := serverLimits(mux); n != sideConns || evicted == nil {
			t.Errorf("%s listener: connection cap %d (counter %v), want %d and the refused counter", name, n, evicted, sideConns)
		}
	}
	if n, _ := serverLimits(h.mux()); n != defaultMaxWatchers+connHeadroom {
		t.Errorf("--http listener: connection cap %d, want %d", n, defaultMaxWatchers+connHeadroom)
	}
}
