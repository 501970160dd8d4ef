package main

import (
	"container/list"
	"errors"
	"fmt"
	"net"
	"net/http"
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
const (
	defaultMaxWatchers = 100
	// maxMaxWatchers bounds --max-watchers: each stream costs about 25 KiB.
	maxMaxWatchers = 10000
	// connHeadroom is how many connections the cap allows beyond the
	// /watch streams: probes, scrapes, GET / clients and idle keep-alives.
	// At the cap, idle connections are closed for new ones, so it only
	// needs to cover requests in progress at the same instant.
	connHeadroom = 156

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
	refusedConnections = "connections" // an idle connection was closed at the connection cap
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
			Help: "HTTP requests and connections refused at a limit: reason=watchers, a /watch beyond --max-watchers answered 503; reason=connections, an idle connection closed at the connection cap to admit a new one.",
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
	h *handlers
}

// limited wraps the endpoints for serve, and registers the metric.
func (h *handlers) limited(m http.Handler) http.Handler {
	h.refusedCounter(refusedConnections)
	return &routes{Handler: m, h: h}
}

// serverLimits returns the connection cap and the counter of connections
// closed at it: those of h when it comes from handlers.mux, else the
// defaults and an unregistered counter.
func serverLimits(h http.Handler) (maxConns int, evicted prometheus.Counter) {
	if r, ok := h.(*routes); ok {
		return r.h.connLimit(), r.h.refusedCounter(refusedConnections)
	}
	var d handlers
	return d.connLimit(), d.refusedCounter(refusedConnections)
}

// connLimiter is a net.Listener that keeps at most max connections open.
//
// At the cap, a new connection is admitted by closing the connection that
// has been idle longest: one without a request in progress, that is a
// keep-alive between requests or one that has not sent a complete request
// header yet. Refusing the new connection instead would let anyone who
// holds max idle connections (cheap: no request needed) lock kubelet's
// probes out, for up to idleTimeout at a time, renewed at will; with
// eviction a probe's GET / is served at once, and the attacker's own
// connections pay.
//
// When no connection is idle, every one is serving a request: the new
// connection then waits, accepted but unread, and those behind it in the
// kernel's listen backlog, until a connection closes or turns idle.
// Requests other than /watch end within the read and write timeouts, and
// /watch streams are capped below max (connHeadroom), so the wait is
// short.
//
// serve installs connState as the server's ConnState hook, which tells
// which connections are idle.
type connLimiter struct {
	net.Listener
	max     int
	evicted prometheus.Counter

	mu     sync.Mutex
	cond   sync.Cond // signalled when a slot frees or a connection turns idle
	open   int       // admitted and not closed
	idle   list.List // of *limitedConn: new or idle, longest idle first
	closed bool
}

func newConnLimiter(ln net.Listener, max int, evicted prometheus.Counter) *connLimiter {
	l := &connLimiter{Listener: ln, max: max, evicted: evicted}
	l.cond.L = &l.mu
	return l
}

// limitedConn is an admitted connection; it frees its slot on Close.
type limitedConn struct {
	net.Conn
	l *connLimiter

	// Guarded by l.mu.
	elem     *list.Element // in l.idle, or nil while serving a request
	released bool
}

func (c *limitedConn) Close() error {
	c.l.release(c)
	return c.Conn.Close()
}

// Accept admits the next connection, closing the longest idle one at the
// cap or waiting for a slot when none is idle.
func (l *connLimiter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	for l.open >= l.max && !l.closed {
		e := l.idle.Front()
		if e == nil {
			l.cond.Wait()
			continue
		}
		victim := l.idle.Remove(e).(*limitedConn)
		victim.elem = nil
		l.mu.Unlock()
		_ = victim.Close() // frees its slot
		l.evicted.Inc()
		l.mu.Lock()
	}
	if l.closed {
		l.mu.Unlock()
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.open++
	lc := &limitedConn{Conn: c, l: l}
	lc.elem = l.idle.PushBack(lc) // idle until its first request is read
	l.mu.Unlock()
	return lc, nil
}

func (l *connLimiter) release(c *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.released {
		return
	}
	c.released = true
	if c.elem != nil {
		l.idle.Remove(c.elem)
		c.elem = nil
	}
	l.open--
	l.cond.Broadcast()
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
		if lc.elem == nil {
			lc.elem = l.idle.PushBack(lc)
			l.cond.Broadcast()
		}
	case http.StateActive, http.StateHijacked:
		if lc.elem != nil {
			l.idle.Remove(lc.elem)
			lc.elem = nil
		}
	}
}

// Close stops accepting, also a waiting Accept.
func (l *connLimiter) Close() error {
	l.mu.Lock()
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()
	return l.Listener.Close()
}
