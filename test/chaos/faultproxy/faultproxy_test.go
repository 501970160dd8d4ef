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

package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/elector-dev/elector/internal/testwait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo serves line echo on loopback until the test ends.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	conns := make(chan net.Conn, 100)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		testwait.Recv(t, done, "the echo server to stop")
		close(conns)
		for c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// roundTrip sends a line and reads it back within timeout.
func roundTrip(c net.Conn, r *bufio.Reader, msg string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	_ = c.SetDeadline(start.Add(timeout))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return 0, err
	}
	got, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if got != msg+"\n" {
		return 0, errors.New("echoed " + got)
	}
	return time.Since(start), nil
}

func TestPassesBytesThrough(t *testing.T) {
	p := newProxy(t, echo(t))
	c, r := dial(t, p)
	for _, msg := range []string{"a", "hello", string(make([]byte, 100000))} {
		if _, err := roundTrip(c, r, msg, 5*time.Second); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	}
}

func TestBlackholeHoldsBytesUntilHeal(t *testing.T) {
	p := newProxy(t, echo(t))
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, "before", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Blackhole()
	_, err := roundTrip(c, r, "held", 300*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("round trip through a blackhole = %v, want a timeout", err)
	}
	// A new connection hangs too.
	c2, r2 := dial(t, p)
	if _, err := roundTrip(c2, r2, "new", 300*time.Millisecond); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("new connection through a blackhole = %v, want a timeout", err)
	}
	p.Heal()
	// The held bytes arrive after the heal, in order.
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "held\n" {
		t.Fatalf("after heal read %q, %v; want the held line", got, err)
	}
	_ = c2.SetDeadline(time.Now().Add(5 * time.Second))
	if got, err := r2.ReadString('\n'); err != nil || got != "new\n" {
		t.Fatalf("after heal read %q, %v; want the held line", got, err)
	}
}

func TestLatencyDelaysEachDirection(t *testing.T) {
	p := newProxy(t, echo(t))
	c, r := dial(t, p)
	const d = 100 * time.Millisecond
	p.Latency(d)
	took, err := roundTrip(c, r, "slow", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if took < 2*d {
		t.Fatalf("round trip took %v with %v latency each way, want at least %v", took, d, 2*d)
	}
	p.Heal()
	if _, err := roundTrip(c, r, "fast", 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestResetKillsOpenConnections(t *testing.T) {
	p := newProxy(t, echo(t))
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, "x", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Reset()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadByte(); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after reset = %v, want ECONNRESET", err)
	}
	// New connections work.
	c2, r2 := dial(t, p)
	if _, err := roundTrip(c2, r2, "y", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if acc, resets, _ := p.Stats(); acc != 2 || resets != 1 {
		t.Fatalf("stats = %d accepted, %d reset; want 2, 1", acc, resets)
	}
}

func TestDownTargetLooksRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := newProxy(t, addr)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		return // reset before the dial returned
	}
	defer c.Close()
	if _, err := roundTrip(c, bufio.NewReader(c), "x", 5*time.Second); err == nil {
		t.Fatal("round trip to a closed port succeeded")
	}
}

func TestCloseEndsEverything(t *testing.T) {
	p, err := New(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	c, r := dial(t, p)
	p.Blackhole()
	_, _ = io.WriteString(c, "stuck\n")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("read after Close succeeded")
	}
	if _, err := net.Dial("tcp", p.Addr()); err == nil {
		t.Fatal("dial after Close succeeded")
	}
}
