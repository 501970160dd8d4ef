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

package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

const (
	// healthCheckInterval is the pause between two health checks of a
	// member; a check takes at most healthCheckTimeout.
	healthCheckInterval = 250 * time.Millisecond
	healthCheckTimeout  = 2 * time.Second
	lbDialTimeout       = 2 * time.Second
)

// errNoMember is why the load balancer closed a connection.
var errNoMember = errors.New("every member refused the connection")

// loadBalancer is a layer-4 load balancer on a loopback port, in front of the
// kube-apiservers of an HA control plane, as a cloud load balancer is: it
// passes TCP connections through (TLS included, so clients verify the
// members' certificate) to a member chosen round-robin among those in
// rotation.
//
// Each member is health-checked every healthCheckInterval; a member whose
// check fails leaves the rotation, and one whose check passes enters it. A
// member that refuses a connection also leaves the rotation at once, and the
// connection is tried on the next member. Connections already proxied to a
// member are not moved: when the member goes away, they break, and the load
// balancer closes the client side.
//
// When no member is in rotation, the load balancer fails open, as cloud
// load balancers do: it tries every member in turn. Members start out of
// rotation, until their first passing check.
type loadBalancer struct {
	ln    net.Listener
	addrs []string // host:port of each member
	// check reports whether member i is healthy.
	check func(ctx context.Context, i int) error
	// log, if not nil, receives the changes of rotation.
	log io.Writer

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup // serve, the health checkers and the proxies

	mu      sync.Mutex
	healthy []bool
	changed chan struct{} // closed and replaced when healthy changes
	next    int           // where the round-robin search starts
	conns   map[net.Conn]struct{}
	closed  bool
}

// newLoadBalancer listens on a free loopback port and starts routing to
// addrs and health-checking them.
func newLoadBalancer(addrs []string, check func(ctx context.Context, i int) error, log io.Writer) (*loadBalancer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("unable to listen for the load balancer: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	lb := &loadBalancer{
		ln:      ln,
		addrs:   addrs,
		check:   check,
		log:     log,
		ctx:     ctx,
		cancel:  cancel,
		healthy: make([]bool, len(addrs)),
		changed: make(chan struct{}),
		conns:   map[net.Conn]struct{}{},
	}
	lb.wg.Add(1 + len(addrs))
	go lb.serve()
	for i := range addrs {
		go lb.healthCheck(i)
	}
	return lb, nil
}

// addr returns the host:port the load balancer listens on.
func (lb *loadBalancer) addr() string { return lb.ln.Addr().String() }

// inRotation returns the members that new connections may go to, in order.
func (lb *loadBalancer) inRotation() []int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	var in []int
	for i, h := range lb.healthy {
		if h {
			in = append(in, i)
		}
	}
	return in
}

// waitInRotation waits until member i is in rotation.
func (lb *loadBalancer) waitInRotation(ctx context.Context, i int) error {
	for {
		lb.mu.Lock()
		in, changed := lb.healthy[i], lb.changed
		lb.mu.Unlock()
		if in {
			return nil
		}
		select {
		case <-changed:
		case <-lb.ctx.Done():
			return errors.New("the load balancer is closed")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// close stops the load balancer: it stops listening and health-checking,
// closes every proxied connection and waits for its goroutines to end.
func (lb *loadBalancer) close() {
	lb.mu.Lock()
	lb.closed = true
	conns := make([]net.Conn, 0, len(lb.conns))
	for c := range lb.conns {
		conns = append(conns, c)
	}
	lb.mu.Unlock()
	lb.cancel()
	_ = lb.ln.Close()
	for _, c := range conns {
		_ = c.Close()
	}
	lb.wg.Wait()
}

func (lb *loadBalancer) setHealthy(i int, healthy bool, why error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.healthy[i] == healthy || lb.closed {
		return
	}
	lb.healthy[i] = healthy
	close(lb.changed)
	lb.changed = make(chan struct{})
	if lb.log != nil {
		if healthy {
			fmt.Fprintf(lb.log, "[load balancer] member %d (%s) in rotation\n", i, lb.addrs[i])
		} else {
			fmt.Fprintf(lb.log, "[load balancer] member %d (%s) out of rotation: %v\n", i, lb.addrs[i], why)
		}
	}
}

// healthCheck checks member i until the load balancer is closed.
func (lb *loadBalancer) healthCheck(i int) {
	defer lb.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-lb.ctx.Done():
			return
		case <-timer.C:
		}
		ctx, cancel := context.WithTimeout(lb.ctx, healthCheckTimeout)
		err := lb.check(ctx, i)
		cancel()
		if lb.ctx.Err() != nil {
			return
		}
		lb.setHealthy(i, err == nil, err)
		timer.Reset(healthCheckInterval)
	}
}

func (lb *loadBalancer) serve() {
	defer lb.wg.Done()
	for {
		conn, err := lb.ln.Accept()
		if err != nil {
			if lb.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient failure, such as running out of file
			// descriptors: back off a little.
			select {
			case <-lb.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		if !lb.track(conn) {
			_ = conn.Close()
			return
		}
		lb.wg.Add(1)
		go lb.proxy(conn)
	}
}

// track records an open connection so that close can close it; it returns
// false, and records nothing, once the load balancer is closed.
func (lb *loadBalancer) track(c net.Conn) bool {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.closed {
		return false
	}
	lb.conns[c] = struct{}{}
	return true
}

func (lb *loadBalancer) untrack(c net.Conn) {
	lb.mu.Lock()
	delete(lb.conns, c)
	lb.mu.Unlock()
	_ = c.Close()
}

// proxy connects client to a member and copies bytes both ways until either
// side closes or fails; then it closes both.
func (lb *loadBalancer) proxy(client net.Conn) {
	defer lb.wg.Done()
	defer lb.untrack(client)
	member, err := lb.dial()
	if err != nil {
		return
	}
	if !lb.track(member) {
		_ = member.Close()
		return
	}
	defer lb.untrack(member)
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(member, client)
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(client, member)
		done <- struct{}{}
	}()
	<-done
	_ = client.Close()
	_ = member.Close()
	<-done
}

// dial connects to the next member in rotation, trying the others in turn if
// it refuses the connection, and then those out of rotation.
func (lb *loadBalancer) dial() (net.Conn, error) {
	tried := make([]bool, len(lb.addrs))
	d := net.Dialer{Timeout: lbDialTimeout}
	for {
		i, ok := lb.pick(tried)
		if !ok {
			return nil, errNoMember
		}
		tried[i] = true
		conn, err := d.DialContext(lb.ctx, "tcp", lb.addrs[i])
		if err == nil {
			return conn, nil
		}
		if lb.ctx.Err() != nil {
			return nil, err
		}
		lb.setHealthy(i, false, err)
	}
}

// pick returns the next member in rotation, round-robin, skipping those
// already tried; if none is left, the next member out of rotation.
func (lb *loadBalancer) pick(tried []bool) (int, bool) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	n := len(lb.addrs)
	for _, inRotation := range []bool{true, false} {
		for k := range n {
			i := (lb.next + k) % n
			if !tried[i] && (lb.healthy[i] || !inRotation) {
				lb.next = (i + 1) % n
				return i, true
			}
		}
	}
	return 0, false
}
