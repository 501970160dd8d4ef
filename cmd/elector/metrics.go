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
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// The sidecar's own series, besides the library's (elector_is_leader and
// the others, leader_election_master_status) and the shard package's.
const (
	metricBuildInfo   = "elector_build_info"
	metricAPIRequests = "elector_api_requests_total"
)

// newRegistry returns the registry /metrics serves, with the Go and
// process collectors and elector_build_info.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	v := currentVersion()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        metricBuildInfo,
			Help:        "Always 1; the labels name the sidecar's version, git revision and Go version.",
			ConstLabels: prometheus.Labels{"version": v.Version, "revision": v.Commit, "goversion": v.Go},
		}, func() float64 { return 1 }),
	)
	return reg
}

// apiRequests counts the sidecar's requests to the API server by verb and
// status code ("error" when no response came back).
type apiRequests struct {
	next  http.RoundTripper
	count *prometheus.CounterVec
}

func newAPIRequests(reg prometheus.Registerer) func(http.RoundTripper) http.RoundTripper {
	count := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricAPIRequests,
		Help: "Requests of this process to the Kubernetes API server, by verb (get, list, watch, create, update, patch, delete) and HTTP status code (\"error\" when none came back).",
	}, []string{"verb", "code"})
	reg.MustRegister(count)
	return func(next http.RoundTripper) http.RoundTripper { return &apiRequests{next: next, count: count} }
}

// RoundTrip implements http.RoundTripper.
func (a *apiRequests) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := a.next.RoundTrip(req)
	code := "error"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode)
	}
	a.count.WithLabelValues(apiVerb(req), code).Inc()
	return resp, err
}

// apiVerb is the Kubernetes verb of an API request, from its method and
// path: GET is get on a named object, list on a collection, watch with
// ?watch=true.
func apiVerb(req *http.Request) string {
	switch req.Method {
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	case http.MethodGet:
	default:
		return strings.ToLower(req.Method)
	}
	if w := req.URL.Query().Get("watch"); w == "true" || w == "1" {
		return "watch"
	}
	// /api/v1/namespaces/NS/RESOURCE[/NAME[/SUBRESOURCE]] or
	// /apis/GROUP/VERSION/namespaces/NS/RESOURCE[/NAME...]; cluster-scoped
	// resources have no namespaces/NS.
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	rest := 2 // api, v1
	if len(parts) > 0 && parts[0] == "apis" {
		rest = 3 // apis, group, version
	}
	if len(parts) >= rest+2 && parts[rest] == "namespaces" {
		if len(parts) == rest+2 {
			return "get" // the Namespace object itself
		}
		rest += 2
	}
	if len(parts) > rest+1 {
		return "get"
	}
	return "list"
}
