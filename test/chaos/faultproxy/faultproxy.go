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

// Package faultproxy is a TCP proxy on loopback that a test controls: it
// forwards bytes untouched (TLS passes through) and can blackhole them,
// delay them, or reset every connection.
//
// A blackhole holds every byte, in both directions, of existing and new
// connections until Heal; the bytes then flow in order. That is what a
// TCP connection sees through a network partition that heals before the
// kernel gives up retransmitting: the peers' writes succeed, nothing
// arrives, and after the heal everything arrives late. Requests time out
// on the client's own deadlines, as they would.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// dialTimeout bounds the dial to the target; a down target is seen by the
// client as a reset connection, like a refused one.
const dialTimeout = 2 * time.Second

// Proxy forwards connections from its loopback listener to a target.
// Its methods are safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener

	mu        sync.Mutex
	blackhole bool
	latency   time.Duration
	changed   chan struct{} // closed and replaced on every change
	conns     map[*conn]struct{}
	closed    bool
	accepted  int
	resets    int

	wg sync.WaitGroup
}

// New listens on 127.0.0.1 on a free port and forwards to target
// (host:port).
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: unable to listen: %w", err)
	}
	p := &Proxy{target: target, ln: ln, changed: make(chan struct{}), conns: map[*conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listen address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Blackhole holds all traffic, of existing and new connections, until
// Heal.
func (p *Proxy) Blackhole() { p.set(func() { p.blackhole = true }) }

// Latency delays every chunk of bytes by d in each direction (so a round
// trip takes 2d longer) until Heal.
func (p *Proxy) Latency(d time.Duration) { p.set(func() { p.latency = d }) }

// Heal ends blackhole and latency; held bytes flow at once.
func (p *Proxy) Heal() { p.set(func() { p.blackhole, p.latency = false, 0 }) }

// Reset closes every open connection with a TCP RST to both peers. New
// connections are accepted as usual.
func (p *Proxy) Reset() {
	p.mu.Lock()
	cs := p.snapshot()
	p.resets += len(cs)
	p.mu.Unlock()
	for _, c := range cs {
		c.reset()
	}
}

// Stats returns the number of connections accepted and reset so far, and
// open now.
func (p *Proxy) Stats() (accepted, reset, open int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted, p.resets, len(p.conns)
}

// Close stops listening, resets every connection and waits until all of
// the proxy's goroutines have ended.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.changed)
	cs := p.snapshot()
	p.mu.Unlock()
	err := p.ln.Close()
	for _, c := range cs {
		c.reset()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) set(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	f()
	close(p.changed)
	p.changed = make(chan struct{})
}

// state returns the current faults and a channel closed when they change.
func (p *Proxy) state() (blackhole bool, latency time.Duration, changed <-chan struct{}, closed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blackhole, p.latency, p.changed, p.closed
}

// snapshot lists the open connections; p.mu is held.
func (p *Proxy) snapshot() []*conn {
	cs := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	return cs
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			abort(client)
			return
		}
		p.accepted++
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(client)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	upstream, err := net.DialTimeout("tcp", p.target, dialTimeout)
	if err != nil {
		abort(client) // the client sees a reset, as from a refused port
		return
	}
	c := &conn{client: client, upstream: upstream, dead: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.reset()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(c, upstream, client) }()
	go func() { defer wg.Done(); p.pipe(c, client, upstream) }()
	wg.Wait()
	c.close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// chunk is bytes read at a time.
type chunk struct {
	data []byte
	at   time.Time
}

// pipe copies src to dst through a queue, so that reading never waits for
// a held or delayed write: a reader stage and a writer stage.
func (p *Proxy) pipe(c *conn, dst, src net.Conn) {
	q := &queue{wake: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.writeLoop(c, dst, q)
	}()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			q.push(chunk{data: append([]byte(nil), buf[:n]...), at: time.Now()})
		}
		if err != nil {
			q.finish(err)
			break
		}
	}
	<-done
}

// writeLoop writes queued chunks when the faults allow. At the source's
// EOF it half-closes dst; on any error it resets the connection.
func (p *Proxy) writeLoop(c *conn, dst net.Conn, q *queue) {
	for {
		ch, ok, srcErr := q.pop(c.dead)
		if !ok {
			// A FIN is held by a blackhole like any byte.
			if srcErr != nil && errors.Is(srcErr, io.EOF) && p.wait(c, time.Time{}) {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
					return
				}
			}
			c.reset()
			return
		}
		if !p.wait(c, ch.at) {
			c.reset()
			return
		}
		if _, err := dst.Write(ch.data); err != nil {
			c.reset()
			return
		}
	}
}

// wait blocks while the proxy blackholes, and until the chunk read at at
// has been delayed by the latency. It returns false when the connection
// or the proxy is gone.
func (p *Proxy) wait(c *conn, at time.Time) bool {
	for {
		blackhole, latency, changed, closed := p.state()
		if closed {
			return false
		}
		var t *time.Timer
		switch {
		case blackhole:
			t = time.NewTimer(time.Hour) // woken by changed
		case time.Until(at.Add(latency)) > 0:
			t = time.NewTimer(time.Until(at.Add(latency)))
		default:
			return true
		}
		select {
		case <-changed:
			t.Stop()
		case <-t.C:
			if !blackhole {
				return true
			}
		case <-c.dead:
			t.Stop()
			return false
		}
	}
}

// conn is one proxied connection.
type conn struct {
	client, upstream net.Conn
	once             sync.Once
	dead             chan struct{}
}

// reset closes both sides with RST (linger 0), unless already closed.
func (c *conn) reset() {
	c.once.Do(func() {
		close(c.dead)
		abort(c.client)
		abort(c.upstream)
	})
}

// close closes both sides normally, after both directions ended, so that
// bytes still in the kernel's buffers are delivered.
func (c *conn) close() {
	c.once.Do(func() {
		close(c.dead)
		_ = c.client.Close()
		_ = c.upstream.Close()
	})
}

func abort(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
}

// queue is an unbounded FIFO of chunks between a reader and a writer.
type queue struct {
	mu    sync.Mutex
	items []chunk
	err   error // the reader's final error, once it stopped
	done  bool
	wake  chan struct{}
}

func (q *queue) push(ch chunk) {
	q.mu.Lock()
	q.items = append(q.items, ch)
	q.mu.Unlock()
	q.signal()
}

func (q *queue) finish(err error) {
	q.mu.Lock()
	q.err, q.done = err, true
	q.mu.Unlock()
	q.signal()
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop returns the next chunk, or ok=false with the reader's error once the
// queue is drained and the reader stopped, or when dead is closed.
func (q *queue) pop(dead <-chan struct{}) (chunk, bool, error) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			ch := q.items[0]
			q.items = q.items[1:]
			q.mu.Unlock()
			return ch, true, nil
		}
		done, err := q.done, q.err
		q.mu.Unlock()
		if done {
			return chunk{}, false, err
		}
		select {
		case <-q.wake:
		case <-dead:
			return chunk{}, false, nil
		}
	}
}
