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
	"cmp"
	"container/list"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HTTP under abuse. The sidecar's port is often bound to all interfaces
// (--http=0.0.0.0:4444) and answers anyone in the cluster, while the
// container may have a memory limit of 64Mi. What a client can make the
// server hold is bounded:
//
//   - /watch streams: at most --max-watchers at once; the next one gets
//     503 with Retry-After. Each write to a stream has a deadline of
//     watchWriteTimeout, so a client that stops reading is dropped once
//     the socket buffers are full.
//   - connections: at most --max-watchers + connHeadroom at once (see
//     connLimiter for what happens at the cap).
//   - time: a request's header must arrive within readHeaderTimeout, the
//     whole request within readTimeout (a body trickled in cannot keep a
//     connection busy), and its answer be written within writeTimeout,
//     except on /watch, see above; a keep-alive connection is closed
//     after idleTimeout without a request.
//   - memory per connection: a request header of at most maxHeaderBytes,
//     net/http's 4 KiB read and write buffers.
//
// Refusals are counted in elector_http_refused_total.
//
// The defaults keep the sidecar under 32 MiB of RSS while 10,000
// connections are opened at it as fast as it accepts them (test/e2e
// TestHTTPUnderAbuse); its idle RSS, mostly the binary's pages, is
// measured in BENCHMARKS.md (Footprint). Under such a flood each connection slot costs 60 to 90
// KiB of RSS (connection, goroutines, buffers and the garbage collector's
// slack): peaks measured on 2 cores were about 38 MiB with 100 streams and
// 256 connections, 34 MiB with 100 and 128, 31.5 MiB with 32 and 64, 30.3
// to 31.7 MiB with 32 and 48, 29.7 to 30.8 MiB with the defaults, 16 and
// 32; idle, the RSS itself varies by 1 MiB from start to start. A Pod's
// own clients need a handful of each.
const (
	defaultMaxWatchers = 16
	// maxMaxWatchers bounds --max-watchers.
	maxMaxWatchers = 10000
	// connHeadroom is how many connections the cap allows beyond the
	// /watch streams: probes, scrapes, GET / clients and idle keep-alives.
	// At the cap, idle connections are closed for new ones, so it only
	// needs to cover requests in progress at the same instant.
	connHeadroom = 16

	// readHeaderTimeout protects the server from slow clients.
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 30 * time.Second
	// watchWriteTimeout is the deadline of each write to a /watch stream.
	watchWriteTimeout = 10 * time.Second
	// watchRetryAfter is the Retry-After of a /watch refused at the cap.
	watchRetryAfter = 10 * time.Second
	maxHeaderBytes  = 8 << 10
)

// metricRefused counts what a limit refused, by reason.
const metricRefused = "elector_http_refused_total"

// Reasons of metricRefused.
const (
	refusedWatchers    = "watchers"    // a /watch beyond --max-watchers got 503
	refusedConnections = "connections" // a connection was closed at the connection cap
)

// httpLimits are the handlers' limits and their state. The zero value
// takes the defaults; app sets maxWatchers from --max-watchers.
type httpLimits struct {
	maxWatchers int // 0: defaultMaxWatchers
	// Tests only: 0 takes the default.
	maxConns          int           // 0: maxWatchers + connHeadroom
	watchWriteTimeout time.Duration // 0: watchWriteTimeout
	// registerer receives elector_http_refused_total. nil: the handlers'
	// gatherer, when it is a Registerer too (as a *prometheus.Registry is).
	registerer prometheus.Registerer

	watchers    atomic.Int64 // open /watch streams
	metricsOnce sync.Once
	refused     *prometheus.CounterVec
}

func (h *handlers) watcherLimit() int {
	if h.maxWatchers > 0 {
		return h.maxWatchers
	}
	return defaultMaxWatchers
}

func (h *handlers) connLimit() int {
	if h.maxConns > 0 {
		return h.maxConns
	}
	return h.watcherLimit() + connHeadroom
}

func (h *handlers) watchWriteDeadline() time.Duration {
	if h.watchWriteTimeout > 0 {
		return h.watchWriteTimeout
	}
	return watchWriteTimeout
}

// refusedCounter returns the counter of reason, registering the metric on
// first use.
func (h *handlers) refusedCounter(reason string) prometheus.Counter {
	h.metricsOnce.Do(func() {
		h.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricRefused,
			Help: "HTTP requests and connections refused at a limit: reason=watchers, a /watch beyond --max-watchers answered 503; reason=connections, a connection closed at the connection cap (an idle one to admit a new one, or the new one).",
		}, []string{"reason"})
		reg := h.registerer
		if reg == nil {
			reg, _ = h.gatherer.(prometheus.Registerer)
		}
		if reg != nil {
			err := reg.Register(h.refused)
			var are prometheus.AlreadyRegisteredError
			switch {
			case err == nil:
			case errors.As(err, &are):
				// Another handlers on the same registry (tests).
				if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
					h.refused = existing
				}
			default:
				panic(fmt.Sprintf("registering %s: %v", metricRefused, err))
			}
		}
		// Both series exist from the start, at 0.
		h.refused.WithLabelValues(refusedWatchers)
		h.refused.WithLabelValues(refusedConnections)
	})
	return h.refused.WithLabelValues(reason)
}

// acquireWatcher takes a /watch slot, or reports false at the cap.
func (h *handlers) acquireWatcher() bool {
	if h.watchers.Add(1) > int64(h.watcherLimit()) {
		h.watchers.Add(-1)
		return false
	}
	return true
}

func (h *handlers) releaseWatcher() { h.watchers.Add(-1) }

// refuseWatch answers a /watch beyond the cap.
func (h *handlers) refuseWatch(w http.ResponseWriter) {
	h.refusedCounter(refusedWatchers).Inc()
	w.Header().Set("Retry-After", strconv.Itoa(int(watchRetryAfter/time.Second)))
	http.Error(w, fmt.Sprintf("too many /watch streams: the limit is %d (--max-watchers); retry later", h.watcherLimit()), http.StatusServiceUnavailable)
}

// routes is what handlers.mux returns: the endpoints, and the handlers'
// limits for serve to apply to the server and its listener.
type routes struct {
	http.Handler
	h        *handlers
	maxConns int // 0: the handlers' connLimit
}

// limited wraps the endpoints for serve, and registers the metric.
func (h *handlers) limited(m http.Handler) http.Handler {
	return h.limitedTo(m, 0)
}

// limitedTo is limited with a connection cap of its own (0: the
// handlers'), for the probe and metrics listeners (ports.go).
func (h *handlers) limitedTo(m http.Handler, maxConns int) http.Handler {
	h.refusedCounter(refusedConnections)
	return &routes{Handler: m, h: h, maxConns: maxConns}
}

// serverLimits returns the connection cap and the counter of connections
// closed at it: those of h when it comes from handlers.mux, else the
// defaults and an unregistered counter.
func serverLimits(h http.Handler) (maxConns int, evicted prometheus.Counter) {
	if r, ok := h.(*routes); ok {
		if r.maxConns > 0 {
			return r.maxConns, r.h.refusedCounter(refusedConnections)
		}
		return r.h.connLimit(), r.h.refusedCounter(refusedConnections)
	}
	var d handlers
	return d.connLimit(), d.refusedCounter(refusedConnections)
}

// connLimiter is a net.Listener that keeps at most max connections open.
// At the cap, it makes room for a new connection by closing another, or
// closes the new one; it never waits, so the connections behind in the
// kernel's listen backlog, such as kubelet's probes, are not held up.
//
// Which connection goes is decided by client address (peer), as fair
// shares: in a cluster the kubelet probes from its node's address and
// other Pods connect from theirs, so a Pod that floods the port closes
// its own connections, not the probes'. For a new connection from a peer
// holding n connections:
//
//  1. an idle connection of the same peer or of one holding more than n:
//     of the peer holding the most, the one idle longest. Idle means
//     without a request in progress: a keep-alive between requests, or a
//     connection the server waits on for a complete request header.
//  2. else the oldest connection of the peer holding the most, if it
//     holds at least n+2: even a /watch stream or a request in progress,
//     so that one peer cannot hold every slot with streams and requests
//     whose bodies trickle in.
//  3. else the new connection is closed: its peer holds about as many as
//     any other.
//
// Refusing new connections at the cap instead would let anyone who holds
// max idle connections (cheap: no request needed) lock the probes out.
//
// A new connection becomes idle only when the server reads it and finds
// nothing to read: until then its request may be in the socket already,
// unread only because its goroutine has not run yet, and under a flood of
// new connections closing those would close the probes too. For the same
// reason an idle connection with input waiting (a request just sent on a
// keep-alive) goes after the others of its peer. (Input waiting is known
// on Linux only; elsewhere a new connection is idle once the server reads
// it.) Clients behind one address share its fate: a flood from the
// kubelet's own address can close its probes.
//
// serve installs connState as the server's ConnState hook, which tells
// which connections are idle or serving a request.
type connLimiter struct {
	net.Listener
	max     int
	evicted prometheus.Counter
	unread  func(net.Conn) bool // input waiting to be read; tests replace it

	mu     sync.Mutex
	open   int // admitted and not closed
	peers  map[string]*peer
	seq    uint64 // orders idle connections
	closed bool
}

// peer is one client address.
type peer struct {
	host  string
	conns list.List // of its *limitedConn, oldest first
	idle  list.List // of its idle *limitedConn, longest idle first
}

func newConnLimiter(ln net.Listener, max int, evicted prometheus.Counter) *connLimiter {
	return &connLimiter{Listener: ln, max: max, evicted: evicted, unread: unreadInput, peers: map[string]*peer{}}
}

// limitedConn is an admitted connection; it frees its slot on Close.
type limitedConn struct {
	net.Conn
	l *connLimiter
	// known: idle or serving a request, as opposed to new and not yet
	// found idle; reads need not check.
	known atomic.Bool

	// Guarded by l.mu.
	peer      *peer
	elem      *list.Element // in peer.conns
	idleElem  *list.Element // in peer.idle, or nil
	idleSince uint64        // l.seq when it turned idle
	released  bool
}

func (c *limitedConn) Read(b []byte) (int, error) {
	if !c.known.Load() {
		c.l.reading(c)
	}
	return c.Conn.Read(b)
}

func (c *limitedConn) Close() error {
	c.l.release(c)
	return c.Conn.Close()
}

// Accept returns the next connection admitted.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := l.admit(c); lc != nil {
			return lc, nil
		}
	}
}

// admit returns c admitted, or nil when it was closed at the cap.
func (l *connLimiter) admit(c net.Conn) *limitedConn {
	host := remoteHost(c)
	l.mu.Lock()
	if l.open >= l.max && !l.closed {
		victim := l.victim(host)
		l.mu.Unlock()
		l.evicted.Inc()
		if victim == nil {
			_ = c.Close()
			return nil
		}
		_ = victim.Close() // frees its slot: only Accept takes slots
		l.mu.Lock()
	}
	if l.closed {
		l.mu.Unlock()
		_ = c.Close()
		return nil
	}
	p := l.peers[host]
	if p == nil {
		p = &peer{host: host}
		l.peers[host] = p
	}
	lc := &limitedConn{Conn: c, l: l, peer: p}
	lc.elem = p.conns.PushBack(lc)
	l.open++
	l.mu.Unlock()
	return lc
}

// victim returns the connection to close for a new one from host, nil
// when the new one should go: see connLimiter.
func (l *connLimiter) victim(host string) *limitedConn {
	n := 0
	if p := l.peers[host]; p != nil {
		n = p.conns.Len()
	}
	var heaviest *peer
	var idle []*peer // same peer or heavier, with idle connections
	for _, p := range l.peers {
		if heaviest == nil || p.conns.Len() > heaviest.conns.Len() {
			heaviest = p
		}
		if p.idle.Len() > 0 && (p.host == host || p.conns.Len() > n) {
			idle = append(idle, p)
		}
	}
	slices.SortFunc(idle, func(a, b *peer) int {
		if a.conns.Len() != b.conns.Len() {
			return cmp.Compare(b.conns.Len(), a.conns.Len())
		}
		return cmp.Compare(a.idle.Front().Value.(*limitedConn).idleSince, b.idle.Front().Value.(*limitedConn).idleSince)
	})
	if len(idle) > 0 {
		p := idle[0]
		for e := p.idle.Front(); e != nil; e = e.Next() {
			if c := e.Value.(*limitedConn); !l.unread(c.Conn) {
				return c
			}
		}
		return p.idle.Front().Value.(*limitedConn)
	}
	if heaviest != nil && heaviest.conns.Len() >= n+2 {
		return heaviest.conns.Front().Value.(*limitedConn)
	}
	return nil
}

// setIdle adds c to or removes it from its peer's idle connections.
func (l *connLimiter) setIdle(c *limitedConn, idle bool) {
	switch {
	case idle && c.idleElem == nil:
		l.seq++
		c.idleSince = l.seq
		c.idleElem = c.peer.idle.PushBack(c)
	case !idle && c.idleElem != nil:
		c.peer.idle.Remove(c.idleElem)
		c.idleElem = nil
	}
}

// reading is called when the server reads a new connection: it is idle
// if there is nothing to read.
func (l *connLimiter) reading(c *limitedConn) {
	if l.unread(c.Conn) {
		return // a request (or part of one): not idle
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.known.Swap(true) || c.released {
		return
	}
	l.setIdle(c, true)
}

func (l *connLimiter) release(c *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.released {
		return
	}
	c.released = true
	l.setIdle(c, false)
	c.peer.conns.Remove(c.elem)
	if c.peer.conns.Len() == 0 {
		delete(l.peers, c.peer.host)
	}
	l.open--
}

// connState tracks which connections are idle: http.Server.ConnState.
func (l *connLimiter) connState(c net.Conn, s http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lc.released {
		return
	}
	switch s {
	case http.StateIdle:
		lc.known.Store(true)
		l.setIdle(lc, true)
	case http.StateActive, http.StateHijacked:
		lc.known.Store(true)
		l.setIdle(lc, false)
	}
}

// Close stops accepting.
func (l *connLimiter) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return l.Listener.Close()
}

// remoteHost is the client's address without the port.
func remoteHost(c net.Conn) string {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case nil:
		return ""
	default:
		return a.String()
	}
}
