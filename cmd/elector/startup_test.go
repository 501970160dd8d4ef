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
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/elector-dev/elector/internal/testwait"
)

// writeKubeconfig points a kubeconfig at server with a bearer token
// (client-go sends credentials over TLS only).
func writeKubeconfig(t *testing.T, server, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: %s
    insecure-skip-tls-verify: %t
users:
- name: u
  user:
    token: %s
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
`, server, strings.HasPrefix(server, "https:"), token)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fakeAPIServer answers SelfSubjectReview (unless whoAmI is false: 404,
// as on servers without it) and SelfSubjectAccessReview (allowed when
// allow says so).
func fakeAPIServer(t *testing.T, whoAmI bool, allow func(authorizationv1.ResourceAttributes) bool) *httptest.Server {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/apis/authentication.k8s.io/v1/selfsubjectreviews" && whoAmI:
			fmt.Fprint(w, `{"kind":"SelfSubjectReview","apiVersion":"authentication.k8s.io/v1","status":{"userInfo":{"username":"system:serviceaccount:team-a:app"}}}`)
		case r.URL.Path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
			// elector sends JSON; the deserializer reads JSON and protobuf.
			body, _ := io.ReadAll(r.Body)
			var review authorizationv1.SelfSubjectAccessReview
			if _, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, &review); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			review.Kind, review.APIVersion = "SelfSubjectAccessReview", "authorization.k8s.io/v1"
			review.Status.Allowed = allow(*review.Spec.ResourceAttributes)
			_ = json.NewEncoder(w).Encode(review)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func runForTest(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runWith(context.Background(), args, &stdout, &stderr, fakeEnv(nil), quickStartup)
	return code, stderr.String()
}

// quickStartup shrinks the start-up waits, so that tests of what happens
// after them do not wait fifteen real seconds. The re-check logic is the
// same.
func quickStartup(a *app) {
	a.start = &startup{window: 30 * time.Millisecond, backoffMin: 5 * time.Millisecond, backoffMax: 10 * time.Millisecond}
}

// Missing permissions: one summary line, then the Role and RoleBinding.
func TestStartupMissingPermissions(t *testing.T) {
	srv := fakeAPIServer(t, true, func(a authorizationv1.ResourceAttributes) bool { return a.Verb == "get" })
	kc := writeKubeconfig(t, srv.URL, "opaque")
	code, stderr := runForTest(t, "--kubeconfig="+kc, "--election=my-app", "--election-namespace=team-a", "--log-level=error")
	if code != ExitForbidden {
		t.Errorf("exit code = %d, want %d; stderr:\n%s", code, ExitForbidden, stderr)
	}
	first, rest, _ := strings.Cut(stderr, "\n")
	want := `elector: ServiceAccount team-a/app lacks 4 permissions in namespace team-a: create leases.coordination.k8s.io, watch leases.coordination.k8s.io "my-app", update leases.coordination.k8s.io "my-app", create events`
	if first != want {
		t.Errorf("summary\n got: %s\nwant: %s", first, want)
	}
	for _, s := range []string{"kind: Role", "name: elector-my-app", "kind: RoleBinding", "kubectl create role", "--serviceaccount=team-a:app"} {
		if !strings.Contains(rest, s) {
			t.Errorf("explanation lacks %q:\n%s", s, rest)
		}
	}
	if strings.Contains(stderr, "cluster-admin") || strings.Contains(stderr, "ClusterRoleBinding") {
		t.Errorf("suggests cluster-wide rights:\n%s", stderr)
	}
}

// Without SelfSubjectReview the caller is read from its token.
func TestStartupIdentityFromToken(t *testing.T) {
	srv := fakeAPIServer(t, false, func(a authorizationv1.ResourceAttributes) bool { return a.Verb != "create" })
	token := "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4Iiwic3ViIjoic3lzdGVtOnNlcnZpY2VhY2NvdW50OnRlYW0tYTphcHAifQ.c2ln"
	kc := writeKubeconfig(t, srv.URL, token)
	code, stderr := runForTest(t, "--kubeconfig="+kc, "--election=my-app", "--election-namespace=team-a", "--events=false", "--log-level=error")
	if code != ExitForbidden || !strings.HasPrefix(stderr, "elector: ServiceAccount team-a/app lacks 1 permission in namespace team-a: create leases.coordination.k8s.io\n") {
		t.Errorf("exit code %d, stderr:\n%s", code, stderr)
	}
}

func TestStartupUnauthorized(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Unauthorized","code":401}`)
	}))
	defer srv.Close()
	code, stderr := runForTest(t, "--kubeconfig="+writeKubeconfig(t, srv.URL, "expired"), "--election=my-app", "--log-level=error")
	want := "elector: the API server at " + srv.URL + " rejected the credentials (401 Unauthorized); check --kubeconfig or the mounted ServiceAccount token\n"
	if code != ExitUnreachable || stderr != want {
		t.Errorf("exit code %d, stderr %q; want %d, %q", code, stderr, ExitUnreachable, want)
	}
}

// An API server that cannot be reached at start is waited for, not a
// reason to exit (the kubelet would restart the container with a back-off
// of up to five minutes): HTTP serves meanwhile, GET / answers an empty
// name and /readyz says why it is not ready. SIGTERM ends it with 0.
func TestStartupWaitsForAnUnreachableAPIServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := httpLn.Addr().String()
	httpLn.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runWith(ctx, []string{"--kubeconfig=" + writeKubeconfig(t, "http://"+addr, "x"), "--election=my-app", "--http=" + httpAddr, "--log-level=debug"},
			&stdout, &stderr, fakeEnv(nil), quickStartup)
	}()

	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(stderr.String(), `msg="API server still unreachable"`) < 2 {
		select {
		case code := <-done:
			t.Fatalf("exited with %d while the API server was unreachable; stderr:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retries logged; stderr:\n%s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "unable to reach the API server at http://"+addr) {
		t.Errorf("/readyz = %d %q, want 503 naming the unreachable API server", code, body)
	}
	if code, body := get("/"); code != http.StatusOK || body != `{"name":""}` {
		t.Errorf("GET / = %d %q, want 200 {\"name\":\"\"}", code, body)
	}
	// One warning for the outage, however many retries.
	if n := strings.Count(stderr.String(), `level=WARN msg="API server unreachable; waiting for it" error="elector: unable to reach the API server at http://`+addr); n != 1 {
		t.Errorf("%d warnings for one outage, want 1; stderr:\n%s", n, stderr.String())
	}
	for line := range strings.Lines(stderr.String()) {
		if strings.Contains(line, "level=INFO") && strings.Contains(line, "unreachable") {
			t.Errorf("an unreachable API server logged at info level: %s", line)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("exit code %d after SIGTERM, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit after SIGTERM")
	}
}

// The end of an outage is one line, and the sidecar goes on to campaign.
func TestStartupLogsTheAPIServersReturn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runWith(ctx, []string{"--kubeconfig=" + writeKubeconfig(t, "http://"+addr, "x"), "--election=my-app", "--log-level=debug"},
			&stdout, &stderr, fakeEnv(nil), quickStartup)
	}()
	waitForLog := func(what string, n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for strings.Count(stderr.String(), what) < n {
			select {
			case code := <-done:
				t.Fatalf("exited with %d; stderr:\n%s", code, stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s in 30s; stderr:\n%s", what, stderr.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitForLog(`msg="API server still unreachable"`, 2)
	// The API server comes back at the same address.
	srv := fakeAPIServer(t, true, func(authorizationv1.ResourceAttributes) bool { return true })
	srv.Close()
	back, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("unable to listen on %s again: %v", addr, err)
	}
	up := &http.Server{Handler: srv.Config.Handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() { defer close(served); _ = up.Serve(back) }()
	defer func() { _ = up.Close(); <-served }()
	waitForLog(`msg=Campaigning`, 1)
	logs := stderr.String()
	for what, want := range map[string]int{
		`level=WARN msg="API server unreachable; waiting for it"`:     1,
		`level=INFO msg="API server reachable again" unreachableFor=`: 1,
	} {
		if n := strings.Count(logs, what); n != want {
			t.Errorf("%d lines %s, want %d; stderr:\n%s", n, what, want, logs)
		}
	}
	// The fake API server has no Leases: what happens next is not this
	// test's business; elector only has to end.
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("did not exit 30s after SIGTERM")
	}
}

// A permission denied at start is re-checked for the start-up window (a
// kube-apiserver that has just started denies while its caches fill);
// granted meanwhile, the sidecar goes on without printing a Role.
func TestStartupRechecksDeniedPermissions(t *testing.T) {
	var checks atomic.Int32
	srv := fakeAPIServer(t, true, func(a authorizationv1.ResourceAttributes) bool {
		return checks.Add(1) > 8 // the first two rounds of four reviews are denied
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runWith(ctx, []string{"--kubeconfig=" + writeKubeconfig(t, srv.URL, "opaque"), "--election=my-app", "--election-namespace=team-a"},
			&stdout, &stderr, fakeEnv(nil), func(a *app) {
				a.start = &startup{window: time.Minute, backoffMin: 5 * time.Millisecond, backoffMax: 10 * time.Millisecond}
			})
	}()
	// Past the check, the elector reads its Lease: the fake server
	// answers 404 to that, and the elector retries; enough to know it
	// campaigns.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), `msg="Permissions missing; re-checking"`) || checks.Load() <= 8 {
		select {
		case code := <-done:
			t.Fatalf("exited with %d; stderr:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no re-check; stderr:\n%s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	code := testwait.Recv(t, done, "run to return")
	if code != ExitOK || strings.Contains(stderr.String(), "kind: Role") {
		t.Fatalf("exit %d, stderr:\n%s\nwant 0 and no Role printed: the permissions came within the window", code, stderr.String())
	}
}

func TestStartupBadKubeconfig(t *testing.T) {
	code, stderr := runForTest(t, "--kubeconfig=/nonexistent/kubeconfig", "--election=my-app")
	if want := "elector: --kubeconfig=/nonexistent/kubeconfig: no such file or directory\n"; code != ExitConfig || stderr != want {
		t.Errorf("exit code %d, stderr %q; want %d, %q", code, stderr, ExitConfig, want)
	}
}

func TestStartupPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, stderr := runForTest(t, "--http="+ln.Addr().String(), "--election=my-app")
	if want := "elector: --http=" + ln.Addr().String() + ": bind: address already in use\n"; code != ExitConfig || stderr != want {
		t.Errorf("exit code %d, stderr %q; want %d, %q", code, stderr, ExitConfig, want)
	}
}
