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
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/testwait"
)

// guard is a failure deadline for waits, not a timing assertion.
const guard = 30 * time.Second

// serveTest serves h.mux() on a loopback port until the test ends, on
// ln when given.
func serveTest(t *testing.T, h *handlers, ln net.Listener) (addr string) {
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	srv := serve(ln, h.mux(), slog.New(slog.DiscardHandler))
	t.Cleanup(func() {
		if err := srv.shutdown(guard); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return ln.Addr().String()
}

// firstReadListener reports on reads the server's first read of each
// connection it accepts. The connection limiter, which wraps it, has
// judged the connection idle or not by then.
type firstReadListener struct {
	net.Listener
	reads chan<- struct{}
}

func (l firstReadListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &firstReadConn{Conn: c, reads: l.reads}, nil
}

type firstReadConn struct {
	net.Conn
	reads chan<- struct{}
	once  sync.Once
}

func (c *firstReadConn) Read(b []byte) (int, error) {
	c.once.Do(func() {
		select {
		case c.reads <- struct{}{}:
		default:
		}
	})
	return c.Conn.Read(b)
}

// SyscallConn keeps the limiter's check for unread input working.
func (c *firstReadConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}

// noKeepAlive is a client that leaves no idle connection behind.
func noKeepAlive() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

// openWatch opens a /watch stream and reads its first event; cancel ends it.
func openWatch(t *testing.T, addr string) (cancel func()) {
	t.Helper()
	ctx, cancelCtx := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/watch", nil)
	resp, err := noKeepAlive().Do(req)
	if err != nil {
		cancelCtx()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancelCtx()
		resp.Body.Close()
		t.Fatalf("GET /watch = %d, want 200", resp.StatusCode)
	}
	sseReader{bufio.NewReader(resp.Body)}.next(t)
	var once sync.Once
	cancel = func() {
		once.Do(func() {
			cancelCtx()
			resp.Body.Close()
		})
	}
	t.Cleanup(cancel)
	return cancel
}

// refused returns elector_http_refused_total{reason} as gathered from g.
func refused(t *testing.T, g prometheus.Gatherer, reason string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metricRefused {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("%s{reason=%q} is not registered", metricRefused, reason)
	return 0
}

// Beyond --max-watchers, /watch answers 503 with a reason and Retry-After,
// counted; other endpoints still answer, and a slot freed is taken again.
func TestWatchCap(t *testing.T) {
	v := &fakeView{leader: elector.Leader{Identity: "pod-a", Token: 1}}
	h, _ := newTestHandlers(v)
	h.maxWatchers = 2
	addr := serveTest(t, h, nil)
	c := noKeepAlive()

	first := openWatch(t, addr)
	openWatch(t, addr)
	resp, err := c.Get("http://" + addr + "/watch")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third /watch = %d %q, want 503", resp.StatusCode, body)
	}
	if got, want := string(body), "too many /watch streams: the limit is 2 (--max-watchers); retry later\n"; got != want {
		t.Errorf("503 body = %q, want %q", got, want)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "10" {
		t.Errorf("Retry-After = %q, want 10", ra)
	}
	if n := refused(t, h.gatherer, refusedWatchers); n != 1 {
		t.Errorf("refused watchers = %v, want 1", n)
	}
	if n := refused(t, h.gatherer, refusedConnections); n != 0 {
		t.Errorf("refused connections = %v, want 0", n)
	}
	resp, err = c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != `{"name":"pod-a"}` {
		t.Errorf("GET / at the watch cap = %d %q", resp.StatusCode, body)
	}
	resp, err = c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), metricRefused+`{reason="watchers"} 1`) {
		t.Errorf("/metrics lacks %s{reason=\"watchers\"} 1", metricRefused)
	}

	// The slot is released once the handler has returned, shortly after
	// the client goes away.
	first()
	for deadline := time.Now().Add(guard); ; {
		resp, err := c.Get("http://" + addr + "/watch")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/watch = %d after a stream ended, want 200", resp.StatusCode)
		}
	}
}

// notifyView reports when the /watch handler has ended its subscription.
type notifyView struct {
	*fakeView
	once sync.Once
	gone chan struct{}
}

func (n *notifyView) Subscribe(ctx context.Context) <-chan elector.Leader {
	context.AfterFunc(ctx, func() { n.once.Do(func() { close(n.gone) }) })
	return n.fakeView.Subscribe(ctx)
}

// smallBuffers shrinks the send buffers of accepted connections, so that
// a client that does not read blocks the server's writes soon.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// A /watch client that stops reading is dropped: once the socket buffers
// are full, the write's deadline passes and the stream ends.
func TestWatchDropsClientThatDoesNotRead(t *testing.T) {
	big := strings.Repeat("x", 1<<20) // one event of 1 MiB
	v := &notifyView{fakeView: &fakeView{leader: elector.Leader{Identity: big}}, gone: make(chan struct{})}
	h, _ := newTestHandlers(nil)
	h.view = v
	// Every write of the stream has this deadline, the headers' too: a
	// stall longer than it between setting the deadline and writing the
	// headers (50ms once did, under make stress) ends the stream before
	// it subscribes, and the test would wait for a drop that already
	// happened. Half a second is no stall; the 1 MiB event blocks anyway.
	h.watchWriteTimeout = 500 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTest(t, h, smallBuffers{ln})

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := io.WriteString(conn, "GET /watch HTTP/1.1\r\nHost: elector\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-v.gone:
	case <-time.After(guard):
		t.Fatalf("the /watch handler still writes to a client that does not read, or it never subscribed (%d streams open)", h.watchers.Load())
	}
	// The server closed the connection: the client reads what was sent,
	// the start of the event but not all of it, and then the end.
	_ = conn.SetReadDeadline(time.Now().Add(guard))
	_ = conn.(*net.TCPConn).SetReadBuffer(1 << 20) // reopen the window at once
	got, err := io.ReadAll(conn)
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after the stream ended (read %d bytes)", len(got))
	}
	if !bytes.Contains(got, []byte("event: leader\ndata: ")) {
		t.Errorf("read %d bytes without the start of the event: the stream ended before it", len(got))
	}
	if len(got) >= len(big) {
		t.Errorf("read %d bytes, want the event cut short", len(got))
	}
	// The server closes the connection after the handler has returned.
	if n := h.watchers.Load(); n != 0 {
		t.Errorf("%d /watch slots still taken", n)
	}
}

// At the connection cap, an idle connection is closed to admit a new one:
// a probe gets through however many idle connections others hold.
func TestConnCapClosesIdle(t *testing.T) {
	v := &fakeView{leader: elector.Leader{Identity: "pod-a"}}
	h, _ := newTestHandlers(v)
	h.maxConns = 3
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reads := make(chan struct{}, 8)
	addr := serveTest(t, h, firstReadListener{ln, reads})

	var idle []net.Conn // connected, no request sent
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close() //nolint:revive,gocritic // open until the test ends
		idle = append(idle, c)
	}
	// A connection is idle only once the server has read it and found
	// nothing: until then the probe would be the one closed (rule 3 of
	// connLimiter). On a loaded machine the server's goroutines may not
	// have run yet when the probe connects (make stress found it).
	for i := range idle {
		testwait.Recv(t, reads, fmt.Sprintf("the server to read idle connection %d", i+1))
	}
	resp, err := noKeepAlive().Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != `{"name":"pod-a"}` {
		t.Errorf("GET / at the connection cap = %d %q", resp.StatusCode, body)
	}
	if n := refused(t, h.gatherer, refusedConnections); n != 1 {
		t.Errorf("refused connections = %v, want 1", n)
	}
	// Exactly one of the idle connections was closed; the others answer.
	answered := 0
	for _, c := range idle {
		_ = c.SetDeadline(time.Now().Add(guard))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: elector\r\nConnection: close\r\n\r\n"); err != nil {
			continue
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("an idle connection neither answers nor is closed")
		}
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				answered++
			}
		}
	}
	if answered != 2 {
		t.Errorf("%d of 3 idle connections answered, want 2", answered)
	}
}

// chanListener accepts the connections sent on it.
type chanListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{conns: make(chan net.Conn, 1), done: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{} }

// limiterTest drives a connLimiter over in-memory connections, and plays
// the server: it says when a connection is read and which have input
// waiting.
type limiterTest struct {
	t       *testing.T
	ln      *chanListener
	l       *connLimiter
	h       *handlers
	mu      sync.Mutex
	pending map[net.Conn]bool // by server side
	next    chan net.Conn     // of an Accept that waits, if any
}

func newLimiterTest(t *testing.T, max int) *limiterTest {
	lt := &limiterTest{t: t, ln: newChanListener(), pending: map[net.Conn]bool{}}
	lt.h, _ = newTestHandlers(nil)
	lt.l = newConnLimiter(lt.ln, max, lt.h.refusedCounter(refusedConnections))
	lt.l.unread = func(c net.Conn) bool {
		lt.mu.Lock()
		defer lt.mu.Unlock()
		return lt.pending[c]
	}
	t.Cleanup(func() { lt.l.Close() })
	return lt
}

// addrConn is a connection from host.
type addrConn struct {
	net.Conn
	host string
}

func (c addrConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.ParseIP(c.host), Port: 40000} }

// dial connects from host and returns the client's end; accept admits
// the next connection.
func (lt *limiterTest) dial(host string) net.Conn {
	s, c := net.Pipe()
	lt.t.Cleanup(func() { c.Close(); s.Close() })
	lt.ln.conns <- addrConn{s, host}
	return c
}

func (lt *limiterTest) accept() chan net.Conn {
	if lt.next != nil { // an Accept already waits
		got := lt.next
		lt.next = nil
		return got
	}
	got := make(chan net.Conn, 1)
	go func() {
		c, err := lt.l.Accept()
		if err != nil && !errors.Is(err, net.ErrClosed) {
			lt.t.Error(err)
		}
		got <- c
	}()
	return got
}

func (lt *limiterTest) wait(ch chan net.Conn) net.Conn {
	lt.t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(guard):
		lt.t.Fatal("Accept still waits with an idle connection")
		return nil
	}
}

func (lt *limiterTest) connect(host string) net.Conn {
	lt.dial(host)
	return lt.wait(lt.accept())
}

func (lt *limiterTest) setPending(c net.Conn, p bool) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.pending[c.(*limitedConn).Conn] = p
}

func (lt *limiterTest) read(c net.Conn) { lt.l.reading(c.(*limitedConn)) }

func (lt *limiterTest) closed(c net.Conn) bool {
	lt.l.mu.Lock()
	defer lt.l.mu.Unlock()
	return c.(*limitedConn).released
}

// wantClosed checks which of conns are closed, and the counter.
func (lt *limiterTest) wantClosed(conns map[string]net.Conn, counted int, want ...string) {
	lt.t.Helper()
	for name, c := range conns {
		if got := lt.closed(c); got != slices.Contains(want, name) {
			lt.t.Errorf("%s closed = %t, want %t", name, got, !got)
		}
	}
	if n := refused(lt.t, lt.h.gatherer, refusedConnections); n != float64(counted) {
		lt.t.Errorf("refused connections = %v, want %d", n, counted)
	}
}

// refusedNew connects from host and checks that the connection is closed
// at once rather than admitted.
func (lt *limiterTest) refusedNew(host string) {
	lt.t.Helper()
	client := lt.dial(host)
	lt.next = lt.accept() // still waits once this one is closed
	_ = client.SetReadDeadline(time.Now().Add(guard))
	if _, err := client.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		lt.t.Errorf("new connection from %s: read %v, want EOF (closed)", host, err)
	}
}

// From one address: an idle connection goes for a new one, the one idle
// longest, preferring one without input waiting. A new connection is
// idle once the server reads it and finds nothing to read. Without an
// idle connection, the new one is closed.
func TestConnLimiterOnePeer(t *testing.T) {
	lt := newLimiterTest(t, 2)
	const host = "10.0.0.1"
	a := lt.connect(host)
	b := lt.connect(host)
	// Neither read yet: the new one goes.
	lt.refusedNew(host)
	lt.wantClosed(map[string]net.Conn{"a": a, "b": b}, 1)

	// a has its request waiting when read: not idle. b has nothing: idle.
	lt.setPending(a, true)
	lt.read(a)
	lt.read(b)
	c := lt.connect(host)
	lt.wantClosed(map[string]net.Conn{"a": a, "b": b, "c": c}, 2, "b")

	// a serves its request, c is idle: c goes.
	lt.setPending(a, false)
	lt.l.connState(a, http.StateActive)
	lt.read(c)
	d := lt.connect(host)
	lt.wantClosed(map[string]net.Conn{"a": a, "c": c, "d": d}, 3, "c")

	// a and d idle, a longest, but a has a new request waiting: d goes.
	lt.l.connState(a, http.StateIdle)
	lt.read(d)
	lt.setPending(a, true)
	e := lt.connect(host)
	lt.wantClosed(map[string]net.Conn{"a": a, "d": d, "e": e}, 4, "d")

	// a alone idle, with input waiting: it goes all the same (e is not
	// read yet).
	f := lt.connect(host)
	lt.wantClosed(map[string]net.Conn{"a": a, "e": e, "f": f}, 5, "a")
}

// Between addresses, fair shares: a new connection closes an idle one of
// the address holding the most, else that address's oldest connection
// even if busy, as long as it holds two more than the newcomer's; else
// the new one is closed. A flood from one Pod does not close the
// kubelet's probes, nor lock them out with busy connections.
func TestConnLimiterFairShares(t *testing.T) {
	lt := newLimiterTest(t, 3)
	probe := lt.connect("10.0.0.1")
	lt.read(probe)
	x1 := lt.connect("10.0.0.2")
	lt.read(x1)
	x2 := lt.connect("10.0.0.2")
	lt.read(x2)
	// 10.0.0.3 connects: 10.0.0.2, holding the most, loses the connection
	// it has had idle longest, though the probe has been idle longer.
	y := lt.connect("10.0.0.3")
	all := map[string]net.Conn{"probe": probe, "x1": x1, "x2": x2, "y": y}
	lt.wantClosed(all, 1, "x1")

	// One each now. A new one from 10.0.0.2 closes 10.0.0.2's, not the
	// probe, idle longer, which holds no more than 10.0.0.2.
	lt.read(y)
	x3 := lt.connect("10.0.0.2")
	lt.wantClosed(all, 2, "x1", "x2")

	// x3 serves a request: the next connection from 10.0.0.2 may close
	// neither the probe nor y, alone each; it is closed itself.
	lt.l.connState(x3, http.StateActive)
	lt.refusedNew("10.0.0.2")
	lt.wantClosed(map[string]net.Conn{"probe": probe, "y": y, "x3": x3}, 3)
}

// One address holding every slot with busy connections (streams, slow
// requests) loses its oldest to another address's new connection.
func TestConnLimiterBusyPeerYields(t *testing.T) {
	lt := newLimiterTest(t, 3)
	var w []net.Conn
	for range 3 {
		c := lt.connect("10.0.0.2")
		lt.l.connState(c, http.StateActive)
		w = append(w, c)
	}
	probe := lt.connect("10.0.0.1")
	all := map[string]net.Conn{"w0": w[0], "w1": w[1], "w2": w[2], "probe": probe}
	lt.wantClosed(all, 1, "w0")
	// 10.0.0.2 holds 2 now, 10.0.0.1 one: no more yielding.
	lt.refusedNew("10.0.0.1")
	lt.wantClosed(all, 2, "w0")
}

// unreadInput sees a request that has arrived and not been read.
func TestUnreadInput(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("known on Linux only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if unreadInput(server) {
		t.Error("input waiting before the client sent any")
	}
	if _, err := io.WriteString(client, "GET / HTTP/1.1\r\n"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(guard); !unreadInput(server); runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatal("no input waiting after the client sent some")
		}
	}
	if _, err := server.Read(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	if unreadInput(server) {
		t.Error("input waiting after it was read")
	}
}

// When every connection serves a request, a new one from the same
// address is closed at once, and nothing busy is closed for it; a new one
// from another address closes the oldest busy one.
func TestConnCapAllBusy(t *testing.T) {
	v := &fakeView{leader: elector.Leader{Identity: "pod-a"}}
	h, _ := newTestHandlers(v)
	h.maxConns, h.maxWatchers = 2, 2
	addr := serveTest(t, h, nil)
	openWatch(t, addr)
	openWatch(t, addr)
	if _, err := noKeepAlive().Get("http://" + addr + "/"); err == nil {
		t.Error("GET / with every connection busy: answered, want the connection closed")
	}
	if n := refused(t, h.gatherer, refusedConnections); n != 1 {
		t.Errorf("refused connections = %v, want 1", n)
	}
	if n := h.watchers.Load(); n != 2 {
		t.Errorf("%d /watch streams, want both still open", n)
	}

	other := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext,
	}}
	resp, err := other.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET / from 127.0.0.2: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET / from 127.0.0.2 = %d", resp.StatusCode)
	}
	if n := refused(t, h.gatherer, refusedConnections); n != 2 {
		t.Errorf("refused connections = %v, want 2", n)
	}
}

// The server bounds header size and time; an oversized header is refused
// before any handler runs.
func TestServeLimits(t *testing.T) {
	h, _ := newTestHandlers(&fakeView{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(ln, h.mux(), slog.New(slog.DiscardHandler))
	defer func() {
		if err := srv.shutdown(guard); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	s := srv.srv
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 || s.IdleTimeout > 30*time.Second {
		t.Errorf("timeouts: header %v, read %v, write %v, idle %v", s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout)
	}
	if s.MaxHeaderBytes != 8<<10 {
		t.Errorf("MaxHeaderBytes = %d, want 8 KiB", s.MaxHeaderBytes)
	}
	if s.ConnState == nil {
		t.Error("no ConnState hook: idle connections are not tracked")
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 16<<10))
	resp, err := noKeepAlive().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("GET / with a 16 KiB header = %d, want 431", resp.StatusCode)
	}
	if got, want := h.connLimit(), defaultMaxWatchers+connHeadroom; got != want {
		t.Errorf("connection cap = %d, want %d", got, want)
	}
}
