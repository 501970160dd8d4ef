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
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lbWait bounds every wait of the load balancer tests.
const lbWait = 10 * time.Second

// testMember is a TCP server that writes its index on every connection, then
// echoes what it reads.
type testMember struct {
	index   int
	ln      net.Listener
	healthy atomic.Bool // what its health check reports, if it accepts

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func newTestMember(t *testing.T, index int) *testMember {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &testMember{index: index, ln: ln}
	m.healthy.Store(true)
	m.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			m.mu.Lock()
			m.conns = append(m.conns, conn)
			m.mu.Unlock()
			m.wg.Go(func() {
				fmt.Fprintf(conn, "%d\n", index)
				_, _ = io.Copy(conn, conn)
				_ = conn.Close()
			})
		}
	})
	t.Cleanup(m.stop)
	return m
}

// stop closes the listener, so that connections are refused, and every
// accepted connection.
func (m *testMember) stop() {
	_ = m.ln.Close()
	m.mu.Lock()
	for _, c := range m.conns {
		_ = c.Close()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// check is the members' health check: the member accepts a connection and
// reports itself healthy.
func check(members []*testMember) func(context.Context, int) error {
	return func(ctx context.Context, i int) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", members[i].ln.Addr().String())
		if err != nil {
			return err
		}
		_ = conn.Close()
		if !members[i].healthy.Load() {
			return errors.New("unhealthy")
		}
		return nil
	}
}

// connect opens a connection through lb and returns it with the index of
// the member it reached.
func connect(t *testing.T, lb *loadBalancer) (net.Conn, *bufio.Reader, int) {
	t.Helper()
	conn, err := net.Dial("tcp", lb.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(lbWait))
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("connection through the load balancer: %v", err)
	}
	i, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("connection through the load balancer: unexpected greeting %q", line)
	}
	return conn, r, i
}

// reached connects n times through lb and returns the members reached.
func reached(t *testing.T, lb *loadBalancer, n int) []int {
	t.Helper()
	var got []int
	for range n {
		conn, _, i := connect(t, lb)
		_ = conn.Close()
		got = append(got, i)
	}
	return got
}

func waitRotation(t *testing.T, lb *loadBalancer, want []int) {
	t.Helper()
	deadline := time.Now().Add(lbWait)
	for !slices.Equal(lb.inRotation(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("members in rotation: %v after %s, want %v", lb.inRotation(), lbWait, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitClosed checks that the peer of conn closes it.
func waitClosed(t *testing.T, conn net.Conn, r *bufio.Reader, what string) {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(lbWait))
	if _, err := r.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("%s: read %v, want the connection closed", what, err)
	}
}

func TestLoadBalancer(t *testing.T) {
	members := []*testMember{newTestMember(t, 0), newTestMember(t, 1), newTestMember(t, 2)}
	addrs := []string{members[0].ln.Addr().String(), members[1].ln.Addr().String(), members[2].ln.Addr().String()}
	lb, err := newLoadBalancer(addrs, check(members), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.close()
	for i := range members {
		ctx, cancel := context.WithTimeout(t.Context(), lbWait)
		err := lb.waitInRotation(ctx, i)
		cancel()
		if err != nil {
			t.Fatalf("member %d not in rotation: %v", i, err)
		}
	}

	// Round-robin.
	if got := reached(t, lb, 3); !slices.Equal(slices.Sorted(slices.Values(got)), []int{0, 1, 2}) {
		t.Errorf("three connections reached members %v, want each once", got)
	}

	// Bytes pass through both ways.
	held, heldReader, heldMember := connect(t, lb)
	if _, err := held.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := heldReader.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo through the load balancer: %q, %v", line, err)
	}

	// A member failing its health check leaves the rotation, and comes back.
	members[1].healthy.Store(false)
	waitRotation(t, lb, []int{0, 2})
	if got := reached(t, lb, 6); slices.Contains(got, 1) {
		t.Errorf("connections reached %v; member 1 is out of rotation", got)
	}
	members[1].healthy.Store(true)
	waitRotation(t, lb, []int{0, 1, 2})

	// A member refusing connections leaves the rotation at once: no
	// connection fails, whatever the health checks have seen so far.
	refusing := (heldMember + 1) % 3
	members[refusing].stop()
	if got := reached(t, lb, 6); slices.Contains(got, refusing) {
		t.Errorf("connections reached %v; member %d refuses connections", got, refusing)
	}
	if slices.Contains(lb.inRotation(), refusing) {
		t.Errorf("member %d refused a connection and is still in rotation", refusing)
	}

	// A connection to a member that goes away breaks.
	members[heldMember].stop()
	waitClosed(t, held, heldReader, "connection to a stopped member")

	// Without a member in rotation, the load balancer fails open: it
	// tries every member.
	last := 3 - refusing - heldMember
	members[last].healthy.Store(false)
	waitRotation(t, lb, nil)
	if got := reached(t, lb, 3); !slices.Equal(got, []int{last, last, last}) {
		t.Errorf("without a member in rotation, connections reached %v, want member %d, the only one accepting", got, last)
	}
	if got := lb.inRotation(); got != nil {
		t.Errorf("members %v in rotation after connections failed open, want none", got)
	}
	open, openReader, _ := connect(t, lb)

	// When every member refuses, connections are closed at once.
	members[last].stop()
	waitClosed(t, open, openReader, "connection to a stopped member")
	conn, err := net.Dial("tcp", lb.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitClosed(t, conn, bufio.NewReader(conn), "connection when every member refuses")
}

func TestLoadBalancerClose(t *testing.T) {
	members := []*testMember{newTestMember(t, 0)}
	lb, err := newLoadBalancer([]string{members[0].ln.Addr().String()}, check(members), nil)
	if err != nil {
		t.Fatal(err)
	}
	waitRotation(t, lb, []int{0})
	open, openReader, _ := connect(t, lb)
	lb.close()
	waitClosed(t, open, openReader, "connection through a closed load balancer")
	if conn, err := net.Dial("tcp", lb.addr()); err == nil {
		conn.Close()
		t.Error("the closed load balancer accepts connections")
	}
	lb.close() // a no-op
}
