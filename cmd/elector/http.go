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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/elector-dev/elector"
)

// sseHeartbeat is how often /watch sends a comment line, so that proxies
// and clients notice dead connections and do not time out idle ones.
const sseHeartbeat = 15 * time.Second

// leaderView is what the HTTP handlers need of an *elector.Elector.
type leaderView interface {
	Leader() elector.Leader
	Subscribe(ctx context.Context) <-chan elector.Leader
	Synced() bool
	Check(*http.Request) error
	Err() error
}

var _ leaderView = (*elector.Elector)(nil)

// handlers serves the HTTP endpoints.
type handlers struct {
	view     leaderView
	identity string
	gatherer prometheus.Gatherer
	clock    clock.WithTicker
	// oldHolder, in migration mode, names the holder of the old lock: while
	// old replicas run, it is the one that acts, on old and new Pods alike.
	oldHolder func() string
	// waiting, when set, says why the sidecar has not started campaigning
	// yet (an unreachable API server, permissions being re-checked); ""
	// once it campaigns.
	waiting func() string

	// probeAddr and metricsAddr are config's: "" serves those endpoints
	// on the mux's listener (--http), else they answer 404 there
	// (ports.go).
	probeAddr, metricsAddr string

	httpLimits // see limits.go
}

func (h *handlers) mux() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("/", h.name)
	m.HandleFunc("/leader", h.leader)
	m.HandleFunc("/watch", h.watch)
	h.probeRoutes(m, h.healthz, h.readyz)
	h.metricsRoutes(m)
	return h.limited(m)
}

// name answers every path and method not served otherwise with exactly
// {"name":"<leader>"}, as k8s.gcr.io/leader-elector:0.5 did, so that
// existing clients keep working. Followers report the current holder.
func (h *handlers) name(w http.ResponseWriter, _ *http.Request) {
	body, _ := json.Marshal(struct {
		Name string `json:"name"`
	}{h.toJSON(h.view.Leader()).Name})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// leaderJSON is the body of /leader and the data of /watch events.
type leaderJSON struct {
	Name     string `json:"name"`     // the holder; "" when none or unknown
	IsLeader bool   `json:"isLeader"` // this replica leads
	Since    string `json:"since"`    // holder's acquireTime (its clock), RFC 3339
	Token    int64  `json:"token"`    // fencing token of the holder's tenure
	Expiry   string `json:"expiry"`   // when this replica would consider the lease expired
	Identity string `json:"identity"` // this replica's identity
	// Handoff is the planned handoff requested of the holder and not done
	// yet; omitted when none is pending.
	Handoff *handoffJSON `json:"handoff,omitempty"`
	// Error says what keeps this replica from taking part normally (an
	// unreachable API server, a missing permission); Fix, for a missing
	// permission, is the Role and RoleBinding that grant it. Both are
	// omitted when all is well.
	Error string `json:"error,omitempty"`
	Fix   string `json:"fix,omitempty"`
}

func (h *handlers) toJSON(l elector.Leader) leaderJSON {
	v := leaderJSON{
		Name:     l.Identity,
		IsLeader: l.Self,
		Since:    rfc3339(l.Since),
		Token:    int64(l.Token),
		Expiry:   rfc3339(l.Expiry),
		Identity: h.identity,
		Handoff:  toHandoffJSON(l.Handoff),
	}
	// In migration mode the acting leader is the old lock's holder: a
	// replica that holds the Lease but waits for the old lock does not act.
	if h.oldHolder != nil {
		old := h.oldHolder()
		if old != "" {
			v.Name = old
		}
		v.IsLeader = l.Self && old == h.identity // acting only with both locks
	}
	return v
}

// problem is why this replica is not taking part normally, and the fix
// when a permission is missing; "" when all is well.
func (h *handlers) problem() (reason, fix string) {
	if h.waiting != nil {
		if r := h.waiting(); r != "" {
			return r, ""
		}
	}
	err := h.view.Err()
	if err == nil {
		return "", ""
	}
	var fe *elector.ForbiddenError
	if errors.As(err, &fe) {
		fix = fe.Fix
	}
	return oneLine(err), fix
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (h *handlers) leader(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	v := h.toJSON(h.view.Leader())
	v.Error, v.Fix = h.problem()
	_ = json.NewEncoder(w).Encode(v)
}

// healthz fails only when this replica believes it leads but has not
// renewed within the renew deadline: its leader work overran its stop or
// the election loop is stuck. A restart is then the right answer.
func (h *handlers) healthz(w http.ResponseWriter, r *http.Request) {
	if err := h.view.Check(r); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = fmt.Fprintln(w, "ok")
}

// readyz reports ready once the Lease has been read, whoever leads, and
// stays ready after that (API-server outages and lost permissions show on
// /leader, in the logs and metrics, not by taking every replica out of its
// Service at once). Before the first read it answers 503 with the reason.
// It is
// deliberately not gated on leadership: with readiness = "is leader", a
// Deployment's rolling update waits for each new Pod to become ready, and
// a new Pod cannot lead while an old one holds the Lease, so the rollout
// stalls (LINBIT/k8s-await-election PR #1). To route a Service to the
// leader only, select on --leader-label instead.
func (h *handlers) readyz(w http.ResponseWriter, _ *http.Request) {
	if !h.view.Synced() { // stays true once the Lease was read (elector.Synced)
		msg := "lease not read yet"
		if reason, _ := h.problem(); reason != "" {
			msg += ": " + reason
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	_, _ = fmt.Fprintln(w, "ok")
}

// watch streams Server-Sent Events: the current state at once, then one
// "leader" event per change of holder, token or isLeader (a slow client
// sees only the newest state), and a comment every sseHeartbeat. It
// returns when the client goes away, stops reading (each write has a
// deadline), or the server shuts down. Beyond --max-watchers streams it
// answers 503 with Retry-After.
func (h *handlers) watch(w http.ResponseWriter, r *http.Request) {
	if _, ok := w.(http.Flusher); !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	if !h.acquireWatcher() {
		h.refuseWatch(w)
		return
	}
	defer h.releaseWatcher()
	rc := http.NewResponseController(w)
	// send writes s (nothing for the headers) and flushes it, within a
	// deadline of its own: the server's WriteTimeout, set when the
	// request arrived, would end a stream that lives longer. Network
	// deadlines are wall-clock instants, hence time.Now and not h.clock.
	send := func(s string) error {
		if err := rc.SetWriteDeadline(time.Now().Add(h.watchWriteDeadline())); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := io.WriteString(w, s); err != nil {
			return err
		}
		return rc.Flush()
	}
	ctx := r.Context()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if send("") != nil {
		return
	}

	updates := h.view.Subscribe(ctx) // closed when ctx ends
	tick := h.clock.NewTicker(sseHeartbeat)
	defer tick.Stop()
	// In migration mode the acting leader also changes with the old lock,
	// which the Lease's updates do not show: look at it on a short tick.
	var oldTick <-chan time.Time
	if h.oldHolder != nil {
		t := h.clock.NewTicker(oldHolderPoll)
		defer t.Stop()
		oldTick = t.C()
	}
	last := ""
	event := func(l elector.Leader) string {
		data, _ := json.Marshal(h.toJSON(l))
		if string(data) == last {
			return ""
		}
		last = string(data)
		return "event: leader\ndata: " + last + "\n\n"
	}
	for {
		var msg string
		select {
		case <-ctx.Done():
			return
		case l, ok := <-updates:
			if !ok {
				return
			}
			msg = event(l)
		case <-oldTick:
			msg = event(h.view.Leader())
		case <-tick.C():
			msg = ": heartbeat\n\n"
		}
		if msg != "" && send(msg) != nil {
			return
		}
	}
}

// oldHolderPoll is how often /watch looks at the old lock's holder in
// migration mode (the lock itself is read every retry period).
const oldHolderPoll = 250 * time.Millisecond

// server is the HTTP server on a listener opened at start.
type server struct {
	srv    *http.Server
	cancel context.CancelFunc
	done   chan error
}

// serve starts serving on ln, within the limits of limits.go: those of
// the handlers when h comes from handlers.mux, else the defaults. Request
// contexts derive from a context that shutdown cancels, so that /watch
// streams end.
func serve(ln net.Listener, h http.Handler, log *slog.Logger) *server {
	ctx, cancel := context.WithCancel(context.Background())
	maxConns, evicted := serverLimits(h)
	lim := newConnLimiter(ln, maxConns, evicted)
	s := &server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ConnState:         lim.connState,
			BaseContext:       func(net.Listener) context.Context { return ctx },
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		cancel: cancel,
		done:   make(chan error, 1),
	}
	log.Info("Serving HTTP", "addr", ln.Addr().String(), "maxConnections", maxConns)
	go func() { s.done <- s.srv.Serve(lim) }()
	return s
}

// shutdown ends streams, waits for requests in flight (up to timeout) and
// returns once the server has stopped.
func (s *server) shutdown(timeout time.Duration) error {
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
