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

package elector_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/elector-dev/elector"
)

// forbidden is the API server's answer to a request RBAC denies.
func forbidden(verb, name string) error {
	return apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, name,
		errors.New(`User "system:serviceaccount:team-a:app" cannot `+verb+` resource "leases" in API group "coordination.k8s.io" in the namespace "team-a"`))
}

// gate denies every request while closed, as a kube-apiserver does while
// its authorization caches fill, or after a Role was deleted.
type gate struct {
	mu     sync.Mutex
	closed bool
	denied chan string // verbs denied, dropped when nobody reads
}

func newGate(w *world) *gate {
	g := &gate{denied: make(chan string, 1)}
	inner := w.leases
	inner.SetReactor(func(ctx context.Context, verb, _, name string) error {
		g.mu.Lock()
		closed := g.closed
		g.mu.Unlock()
		if closed {
			select {
			case g.denied <- verb:
			default:
			}
			return forbidden(verb, name)
		}
		return nil
	})
	return g
}

func (g *gate) set(closed bool) {
	g.mu.Lock()
	g.closed = closed
	g.mu.Unlock()
}

// errSoon waits until e reports a problem.
func errSoon(t *testing.T, e *elector.Elector) error {
	t.Helper()
	deadline := time.After(guard)
	for {
		if err := e.Err(); err != nil {
			return err
		}
		select {
		case <-deadline:
			t.Fatal("timed out waiting for Err to report the denial")
		default:
			time.Sleep(time.Millisecond)
		}
	}
}

// stepUntil steps the fake clock by step until ch delivers, giving the
// candidates a moment of real time after each step to react. It fails the
// test after limit of fake time or guard of real time.
func stepUntil[T any](t *testing.T, w *world, step, limit time.Duration, ch <-chan T, what string) T {
	t.Helper()
	start := w.clock.Now()
	deadline := time.After(guard)
	for w.clock.Since(start) <= limit {
		w.clock.Step(step)
		select {
		case v := <-ch:
			return v
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no %s within %v", what, limit)
	var zero T
	return zero
}

// TestDenialAtStartIsRetriedForForbiddenTimeout: a candidate whose very
// first requests are denied keeps trying for ForbiddenTimeout (a starting
// API server denies while its caches fill), reports the denial through Err
// meanwhile, then returns the *ForbiddenError with the fix.
func TestDenialAtStartIsRetriedForForbiddenTimeout(t *testing.T) {
	w := newWorld(t)
	g := newGate(w)
	g.set(true)
	a := w.start("a", nil)
	wait(t, g.denied, "a denied request")
	var fe *elector.ForbiddenError
	if err := errSoon(t, a.e); !errors.As(err, &fe) {
		t.Fatalf("Err() = %v, want *ForbiddenError", err)
	}
	select {
	case <-a.done:
		t.Fatalf("Run = %v before ForbiddenTimeout", a.err)
	default:
	}
	// Step until Run gives up: a fixed number of steps can all run before
	// Run has armed its retry timer on the fake clock (then it never fires).
	stepUntil(t, w, 2*time.Second, time.Minute, a.done, "Run to give up after ForbiddenTimeout")
	if err := a.result(t); !errors.As(err, &fe) {
		t.Fatalf("Run = %v, want *ForbiddenError", err)
	}
	if fe.Fix == "" || fe.User != "system:serviceaccount:team-a:app" {
		t.Fatalf("ForbiddenError = %+v, want the user and the fix", fe)
	}
}

// TestDenialAtStartThatHealsIsNotAnError: the API server's caches fill
// within the window; the candidate leads without Run returning.
func TestDenialAtStartThatHealsIsNotAnError(t *testing.T) {
	w := newWorld(t)
	g := newGate(w)
	g.set(true)
	a := w.start("a", nil)
	wait(t, g.denied, "a denied request")
	errSoon(t, a.e)
	w.clock.Step(5 * time.Second)
	g.set(false)
	stepUntil(t, w, time.Second, time.Minute, a.started, "lead once requests are accepted")
	if err := a.e.Err(); err != nil {
		t.Fatalf("Err() = %v while leading", err)
	}
}

// TestPermissionLostAtRuntimeIsRetriedUntilItReturns: once a candidate has
// had access, denials are transient: the leader stops its work by the
// normal deadlines (before anyone could take over), a follower keeps
// campaigning without Run returning, and when the Role is back the
// follower leads, with no restart.
func TestPermissionLostAtRuntimeIsRetriedUntilItReturns(t *testing.T) {
	w := newWorld(t)
	g := newGate(w)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	b := w.start("b", nil)
	follows(t, b, "a")

	g.set(true) // the Role is deleted
	stopPoint := elector.DefaultRenewDeadline - elector.DefaultStopGrace
	for w.clock.Since(epoch) < stopPoint {
		w.clock.Step(time.Second)
	}
	stoppedAt := wait(t, a.stopped, "a to stop at its stop point")
	if stoppedAt.After(epoch.Add(elector.DefaultRenewDeadline)) {
		t.Fatalf("a stopped at %v, want before its renew deadline %v", stoppedAt.Sub(epoch), elector.DefaultRenewDeadline)
	}
	if err := a.result(t); !errors.Is(err, elector.ErrLeadershipLost) {
		t.Fatalf("a's Run = %v, want ErrLeadershipLost", err)
	}
	for w.clock.Since(epoch) < 2*time.Minute {
		w.clock.Step(time.Second)
		select {
		case <-b.done:
			t.Fatalf("b's Run = %v after a denial: once it had access, a denial is not final", b.err)
		case <-b.started:
			t.Fatal("b led while every request was denied")
		case <-time.After(time.Millisecond):
		}
	}
	var fe *elector.ForbiddenError
	if err := errSoon(t, b.e); !errors.As(err, &fe) {
		t.Fatalf("b's Err() = %v, want the *ForbiddenError it keeps retrying", err)
	}

	g.set(false) // the Role is back
	stepUntil(t, w, time.Second, time.Minute, b.started, "b to lead after the permissions returned")
	if err := b.e.Err(); err != nil {
		t.Fatalf("b's Err() = %v after leading", err)
	}
	w.checkNoOverlap()
}

// TestSharedWatchForgetsADenialOfAnEarlierRun: a Run that ended with a
// denial must not leave the denial in the SharedWatch for the next Run:
// once the permission is granted, the next Run on the same watch leads.
func TestSharedWatchForgetsADenialOfAnEarlierRun(t *testing.T) {
	w := newWorld(t)
	g := newGate(w)
	shared := elector.NewSharedWatch(w.leases.Leases(ns), ns, elector.SharedWatchOptions{Clock: w.clock})
	e, err := elector.New(func() elector.Config {
		c := w.config("a")
		c.Watch = shared
		return c
	}())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), idKey{}, "a")
	g.set(true)
	result := make(chan error, 1)
	go func() { result <- e.Run(ctx, func(context.Context, elector.Term) error { return nil }) }()
	wait(t, g.denied, "a denied request")
	errSoon(t, e)
	// Step until the first Run gives up: a fixed number of steps can all
	// run before Run has armed its retry timer on the fake clock (it failed
	// so once on a loaded machine).
	first := stepUntil(t, w, 2*time.Second, time.Minute, result, "the first Run to give up")
	var fe *elector.ForbiddenError
	if !errors.As(first, &fe) {
		t.Fatalf("first Run = %v, want *ForbiddenError", first)
	}

	g.set(false) // granted
	led := make(chan struct{})
	go func() {
		result <- e.Run(ctx, func(context.Context, elector.Term) error { close(led); return nil })
	}()
	// The function returns at once, so Run may have returned too by the
	// time this reads: whether it led is whether led is closed.
	err = wait(t, result, "the second Run to return")
	select {
	case <-led:
	default:
		t.Fatalf("second Run = %v without leading, want it to lead now that access is granted", err)
	}
	if err != nil {
		t.Fatalf("second Run = %v", err)
	}
}
