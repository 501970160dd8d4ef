package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/elector-dev/elector"
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

// noKeepAlive is a client that leaves no idle connection behind.
func noKeepAlive() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

// openWatch opens a /watch stream and reads its first event; cancel ends it.
func openWatch(t *testing.T, addr string) (cancel func()) {
	t.Helper()
	ctx, cancelCtx := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/watch", nil)
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
	h.watchWriteTimeout = 50 * time.Millisecond
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
		t.Fatal("the /watch handler still writes to a client that does not read")
	}
	// The server closed the connection: the client reads what was sent,
	// less than the event, and then the end.
	_ = conn.SetReadDeadline(time.Now().Add(guard))
	_ = conn.(*net.TCPConn).SetReadBuffer(1 << 20) // reopen the window at once
	n, err := io.Copy(io.Discard, conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after the stream ended (read %d bytes)", n)
	}
	if n >= int64(len(big)) {
		t.Errorf("read %d bytes, want the event cut short", n)
	}
	// The server closes the connection after the handler has returned.
	if n := h.watchers.Load(); n != 0 {
		t.Errorf("%d /watch slots still taken", n)
	}
}

// At the connection cap, the connection idle longest is closed to admit
// a new one: a probe gets through however many idle connections others
// hold.
func TestConnCapClosesLongestIdle(t *testing.T) {
	v := &fakeView{leader: elector.Leader{Identity: "pod-a"}}
	h, _ := newTestHandlers(v)
	h.maxConns = 3
	addr := serveTest(t, h, nil)

	var idle []net.Conn // connected, no request sent
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
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
	// The first connection was closed...
	_ = idle[0].SetReadDeadline(time.Now().Add(guard))
	if _, err := io.ReadAll(idle[0]); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Error("the longest idle connection is still open")
		}
	}
	// ...and the second still works.
	if _, err := io.WriteString(idle[1], "GET / HTTP/1.1\r\nHost: elector\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = idle[1].SetReadDeadline(time.Now().Add(guard))
	resp, err = http.ReadResponse(bufio.NewReader(idle[1]), nil)
	if err != nil {
		t.Fatalf("second idle connection: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET / on the second connection = %d", resp.StatusCode)
	}
}

// When every connection serves a request, a new one waits for a slot
// rather than being refused, and nothing busy is closed for it.
func TestConnCapWaitsWhileAllBusy(t *testing.T) {
	v := &fakeView{leader: elector.Leader{Identity: "pod-a"}}
	h, _ := newTestHandlers(v)
	h.maxConns, h.maxWatchers = 2, 2
	addr := serveTest(t, h, nil)
	first := openWatch(t, addr)
	openWatch(t, addr)

	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := noKeepAlive().Get("http://" + addr + "/")
		if err != nil {
			done <- result{err: err}
			return
		}
		resp.Body.Close()
		done <- result{code: resp.StatusCode}
	}()
	first()
	select {
	case r := <-done:
		if r.err != nil || r.code != http.StatusOK {
			t.Errorf("GET / after a slot freed = %d, %v; want 200", r.code, r.err)
		}
	case <-time.After(guard):
		t.Fatal("GET / still waits after a stream ended")
	}
	if n := refused(t, h.gatherer, refusedConnections); n != 0 {
		t.Errorf("refused connections = %v, want 0: no connection was idle", n)
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
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
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
