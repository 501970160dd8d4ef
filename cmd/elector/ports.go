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
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The sidecar's ports. --http serves the leader API (GET / as the 0.5
// image, /leader, /watch, /shards) and, by default, the probes and the
// metrics too. --health-probe-bind-address and --metrics-bind-address
// (controller-runtime's names and conventions) move /healthz and /readyz,
// and /metrics, to listeners of their own, or with "0" nowhere; --http
// then answers 404 on those paths, naming the flag, rather than a
// liveness probe left pointing at --http passing on GET /'s answer.

// sideConns is the connection cap of the probe and the metrics
// listeners: they serve no streams, and a connection is needed only for
// a request in progress (at the cap idle ones are closed for new ones,
// fairly among client addresses, as on --http: limits.go).
const sideConns = connHeadroom

// ports are the sidecar's listeners; nil: not served.
type ports struct {
	http, probes, metrics net.Listener
}

// listen opens the listeners c asks for, so that a taken port fails at
// once, before any request; the error names the flag.
func listen(c config) (ports, error) {
	var p ports
	for _, l := range []struct {
		flag, addr string
		dst        *net.Listener
	}{
		{"http", c.httpAddr, &p.http},
		{"health-probe-bind-address", ownAddr(c.probeAddr), &p.probes},
		{"metrics-bind-address", ownAddr(c.metricsAddr), &p.metrics},
	} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			p.close()
			return ports{}, configf("--%s=%s: %s", l.flag, l.addr, listenErr(err))
		}
		*l.dst = ln
	}
	return p, nil
}

// ownAddr is the address of a listener of its own, "" when none.
func ownAddr(addr string) string {
	if addr == addrOff {
		return ""
	}
	return addr
}

func (p ports) any() bool { return p.http != nil || p.probes != nil || p.metrics != nil }

func (p ports) close() {
	for _, ln := range []net.Listener{p.http, p.probes, p.metrics} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// serveAll serves api on --http, probes and metrics on their own
// listeners when open; stop shuts them all down (at once, each within
// shutdownTimeout).
func (a *app) serveAll(p ports, api, probes, metrics http.Handler) (stop func()) {
	var srvs []*server
	for _, s := range []struct {
		ln net.Listener
		h  http.Handler
	}{{p.http, api}, {p.probes, probes}, {p.metrics, metrics}} {
		if s.ln != nil {
			srvs = append(srvs, serve(s.ln, s.h, a.log))
		}
	}
	return func() {
		var wg sync.WaitGroup
		for _, s := range srvs {
			wg.Go(func() {
				if err := s.shutdown(shutdownTimeout); err != nil {
					a.log.Warn("HTTP server shutdown", "error", err)
				}
			})
		}
		wg.Wait()
	}
}

// probeRoutes adds /healthz and /readyz to m, the --http listener's mux:
// the handlers given, or 404 naming --health-probe-bind-address when the
// probes are served elsewhere or nowhere.
func (h *handlers) probeRoutes(m *http.ServeMux, healthz, readyz http.HandlerFunc) {
	if h.probeAddr != "" {
		healthz = movedTo("/healthz and /readyz", "health-probe-bind-address", h.probeAddr)
		readyz = healthz
	}
	m.HandleFunc("/healthz", healthz)
	m.HandleFunc("/readyz", readyz)
}

// metricsRoutes adds /metrics to m, the --http listener's mux, or a 404
// naming --metrics-bind-address when it is served elsewhere or nowhere.
func (h *handlers) metricsRoutes(m *http.ServeMux) {
	if h.metricsAddr != "" {
		m.HandleFunc("/metrics", movedTo("/metrics", "metrics-bind-address", h.metricsAddr))
		return
	}
	m.Handle("/metrics", h.metricsHandler())
}

func (h *handlers) metricsHandler() http.Handler {
	return promhttp.HandlerFor(h.gatherer, promhttp.HandlerOpts{})
}

// probesMux serves /healthz and /readyz alone, on the listener of
// --health-probe-bind-address.
func (h *handlers) probesMux(healthz, readyz http.HandlerFunc) http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("/healthz", healthz)
	m.HandleFunc("/readyz", readyz)
	m.HandleFunc("/", http.NotFound)
	return h.limitedTo(m, sideConns)
}

// metricsMux serves /metrics alone, on the listener of
// --metrics-bind-address.
func (h *handlers) metricsMux() http.Handler {
	m := http.NewServeMux()
	m.Handle("/metrics", h.metricsHandler())
	m.HandleFunc("/", http.NotFound)
	return h.limitedTo(m, sideConns)
}

// movedTo answers 404 for endpoints served on another listener, or
// nowhere.
func movedTo(what, flag, addr string) http.HandlerFunc {
	msg := fmt.Sprintf("%s: not served on this port; see --%s", what, flag)
	if addr == addrOff {
		msg = fmt.Sprintf("%s: not served (--%s=0)", what, flag)
	}
	return func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, msg, http.StatusNotFound)
	}
}
