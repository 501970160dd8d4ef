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

// Package testwait bounds the waits of tests. A test that waits for
// something that must happen (a value on a channel, a context ending, a
// condition) waits through this package, which fails the test with a
// message naming what did not happen, and the stacks of every goroutine,
// after Timeout: a hang costs seconds and says where, instead of sitting
// until go test's -timeout ends the whole package.
//
// Timeout is a failure deadline, never a timing assertion: it is far above
// what anything takes on a loaded machine (make stress runs the unit tests
// on busy cores). Set ELECTOR_TEST_WAIT (a Go duration) to change it.
//
// Every function must be called from the test's goroutine (it may end the
// test with t.Fatal), like t.Fatal itself.
//
// The module root's tests import it, and so can every module of this
// repository that requires the root module (ctrl, cmd/kubectl-elector,
// bench, test): their import paths share the root's prefix.
package testwait

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"
)

// DefaultTimeout is how long a wait lasts before it fails the test: far
// above anything a passing test waits for, under load included, and far
// below go test's -timeout, so that a hang fails one test with its message.
const DefaultTimeout = 30 * time.Second

// Timeout is the failure deadline of every wait: DefaultTimeout, or
// ELECTOR_TEST_WAIT when set to a positive Go duration.
var Timeout = timeoutFromEnv(os.Getenv("ELECTOR_TEST_WAIT"))

func timeoutFromEnv(v string) time.Duration {
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d
	}
	return DefaultTimeout
}

// Recv returns the next value from ch (the zero value if ch is closed).
// It fails the test if none arrives within Timeout; what names the
// awaited event ("the leader to start").
func Recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	v, _ := RecvOK(t, ch, what)
	return v
}

// RecvOK is Recv that also reports, like v, ok := <-ch, whether the value
// was sent (true) or ch was closed (false).
func RecvOK[T any](t *testing.T, ch <-chan T, what string) (T, bool) {
	t.Helper()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	select {
	case v, ok := <-ch:
		return v, ok
	case <-timer.C:
		fail(t, what)
	}
	var zero T
	return zero, false
}

// Send sends v on ch. It fails the test if no one receives it (or there
// is no room in ch's buffer) within Timeout.
func Send[T any](t *testing.T, ch chan<- T, v T, what string) {
	t.Helper()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	select {
	case ch <- v:
	case <-timer.C:
		fail(t, what)
	}
}

// Done waits until ctx ends and returns its cause (context.Cause).
func Done(t *testing.T, ctx context.Context, what string) error {
	t.Helper()
	Recv(t, ctx.Done(), what)
	return context.Cause(ctx)
}

// Until polls cond until it returns true. It fails the test if cond is
// still false after Timeout. Polling yields the processor between calls
// and backs off to a millisecond; it never stands for a timing
// assertion.
func Until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for i := 0; !cond(); i++ {
		if time.Now().After(deadline) {
			fail(t, what)
			return
		}
		if i < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(time.Millisecond)
		}
	}
}

// Call runs fn (a wg.Wait, say) and waits for it to return. If it does
// not within Timeout, the test fails; fn's goroutine is left behind, and
// the test binary's leak check will name it too.
func Call(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	Recv(t, done, what)
}

// maxStacks caps the goroutine dump of a failed wait.
const maxStacks = 1 << 20

// fail ends the test: what did not happen, within how long, and where
// every goroutine was.
func fail(t *testing.T, what string) {
	t.Helper()
	buf := make([]byte, maxStacks)
	buf = buf[:runtime.Stack(buf, true)]
	t.Logf("goroutines when the wait for %s timed out:\n%s", what, buf)
	t.Fatalf("timed out after %v waiting for %s", Timeout, what)
}
