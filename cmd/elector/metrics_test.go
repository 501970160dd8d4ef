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
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestAPIVerb(t *testing.T) {
	for _, c := range []struct{ method, url, want string }{
		{"GET", "/apis/coordination.k8s.io/v1/namespaces/ns/leases/a", "get"},
		{"GET", "/apis/coordination.k8s.io/v1/namespaces/ns/leases", "list"},
		{"GET", "/apis/coordination.k8s.io/v1/namespaces/ns/leases?fieldSelector=x&watch=true", "watch"},
		{"GET", "/api/v1/namespaces/ns/pods/p", "get"},
		{"GET", "/api/v1/namespaces/ns", "get"},
		{"GET", "/api/v1/namespaces/ns/pods", "list"},
		{"GET", "/api/v1/nodes", "list"},
		{"PUT", "/apis/coordination.k8s.io/v1/namespaces/ns/leases/a", "update"},
		{"POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "create"},
		{"PATCH", "/api/v1/namespaces/ns/pods/p", "patch"},
		{"DELETE", "/apis/coordination.k8s.io/v1/namespaces/ns/leases/a", "delete"},
	} {
		if got := apiVerb(httptest.NewRequest(c.method, c.url, nil)); got != c.want {
			t.Errorf("%s %s: verb %q, want %q", c.method, c.url, got, c.want)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestAPIRequestsCountsByVerbAndCode(t *testing.T) {
	reg := newRegistry()
	rt := newAPIRequests(reg)(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPut {
			return nil, http.ErrHandlerTimeout
		}
		return &http.Response{StatusCode: http.StatusForbidden, Body: http.NoBody}, nil
	}))
	for _, m := range []string{"GET", "GET", "PUT"} {
		resp, err := rt.RoundTrip(httptest.NewRequest(m, "/apis/coordination.k8s.io/v1/namespaces/ns/leases/a", nil))
		if err == nil {
			_ = resp.Body.Close()
		}
	}
	want := `
# HELP elector_api_requests_total Requests of this process to the Kubernetes API server, by verb (get, list, watch, create, update, patch, delete) and HTTP status code ("error" when none came back).
# TYPE elector_api_requests_total counter
elector_api_requests_total{code="403",verb="get"} 2
elector_api_requests_total{code="error",verb="update"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "elector_api_requests_total"); err != nil {
		t.Error(err)
	}
}

func TestBuildInfo(t *testing.T) {
	v := currentVersion()
	want := `
# HELP elector_build_info Always 1; the labels name the sidecar's version, git revision and Go version.
# TYPE elector_build_info gauge
elector_build_info{goversion="` + v.Go + `",revision="` + v.Commit + `",version="` + v.Version + `"} 1
`
	if err := testutil.GatherAndCompare(newRegistry(), strings.NewReader(want), "elector_build_info"); err != nil {
		t.Error(err)
	}
}
