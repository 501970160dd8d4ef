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
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/elector-dev/elector"
)

// clientGoRenews writes the Lease as client-go's LeaseLock does when the
// record it observed names it: holder id, its own lease duration, a new
// renewTime, acquireTime and leaseTransitions kept, no preferredHolder,
// and the metadata (annotations) it read.
func (w *world) clientGoRenews(id string, at time.Time) {
	w.t.Helper()
	w.edit(func(l *coordinationv1.Lease) {
		l.Spec.HolderIdentity = ptr.To(id)
		l.Spec.LeaseDurationSeconds = ptr.To[int32](15)
		l.Spec.RenewTime = &metav1.MicroTime{Time: at}
		l.Spec.PreferredHolder = nil
	})
}

// handTo hands the Lease from a's running tenure to the client-go
// candidate cg and waits for the transfer.
func handTo(t *testing.T, w *world, a *worker, cg string) {
	t.Helper()
	w.request(cg)
	wait(t, a.left, "a's work to stop for the handoff")
	deadline := time.After(guard)
	for holder(w.get()) != cg {
		select {
		case <-deadline:
			t.Fatalf("no transfer to %s", cg)
		case <-time.After(time.Millisecond):
		}
	}
}

// TestClientGoRenewalMakesTheMarkerStale: a client-go holder keeps the
// annotations it read, so after a transfer to it the marker names it with
// the right token. Its first renewal must make the marker stale, so that
// RequestHandoff refuses a request nobody would serve (it would linger and
// surprise a later elector holder).
func TestClientGoRenewalMakesTheMarkerStale(t *testing.T) {
	w := newWorld(t)
	a := w.worker("a", false, nil)
	wait(t, a.started, "a to lead")
	handTo(t, w, a, "cg")
	if _, current := elector.MarkerOf(w.get()); !current {
		t.Fatal("the transfer's own marker is not current")
	}

	w.clientGoRenews("cg", w.clock.Now().Add(time.Second))
	l := w.get()
	if m, current := elector.MarkerOf(l); current {
		t.Fatalf("marker %+v is current after a client-go renewal (holder %q, token %d)", m, holder(l), transitions(l))
	}
	_, err := elector.RequestHandoff(context.Background(), w.leases.Leases(ns), lease, "a")
	if !errors.Is(err, elector.ErrHolderCannotHandOff) {
		t.Fatalf("RequestHandoff under a client-go holder: err = %v, want ErrHolderCannotHandOff", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `"cg"`) || !strings.Contains(msg, "stale") {
		t.Fatalf("error %q does not name the holder and why", msg)
	}
	if _, ok := w.get().Annotations[elector.AnnotationHandoffTo]; ok {
		t.Fatal("a request was written although nobody will serve it")
	}
	w.checkNoOverlap()
}

// TestMarkersWithoutRenewTimeAreNotCurrent: a marker written before
// markers carried renewTime cannot tell a client-go renewal from its own
// write, so it never counts as current.
func TestMarkersWithoutRenewTimeAreNotCurrent(t *testing.T) {
	now := metav1.NewMicroTime(epoch)
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: lease, Namespace: ns, Annotations: map[string]string{
			elector.AnnotationHolder: `{"identity":"a","token":3,"handoff":true}`,
		}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("a"), LeaseTransitions: ptr.To[int32](3), RenewTime: &now},
	}
	if m, current := elector.MarkerOf(l); current {
		t.Fatalf("marker %+v without renewTime is current", m)
	}
}

// TestHandoffToACoordinatedPreferredHolderClearsPreferredHolder: with
// Coordinated Leader Election, client-go's candidate treats a Lease that
// names it and carries spec.preferredHolder as the end of its term: it
// never renews it. A transfer to the preferred holder must therefore
// leave spec.preferredHolder empty (and keep spec.strategy).
func TestHandoffToACoordinatedPreferredHolderClearsPreferredHolder(t *testing.T) {
	w := newWorld(t)
	a := w.worker("a", false, nil)
	wait(t, a.started, "a to lead")
	w.edit(func(l *coordinationv1.Lease) {
		l.Spec.Strategy = ptr.To(coordinationv1.OldestEmulationVersion)
		l.Spec.PreferredHolder = ptr.To("cg")
	})
	wait(t, a.left, "a's work to stop for the preferred holder")
	deadline := time.After(guard)
	for holder(w.get()) != "cg" {
		select {
		case <-deadline:
			t.Fatal("no transfer to the preferred holder")
		case <-time.After(time.Millisecond):
		}
	}
	l := w.get()
	// client-go (tryCoordinatedRenew): IsLeader() && PreferredHolder != ""
	// is the end of the term.
	if p := ptr.Deref(l.Spec.PreferredHolder, ""); p != "" {
		t.Fatalf("Lease handed to cg still names preferredHolder %q: a Coordinated client-go cg would treat it as the end of its term", p)
	}
	if s := ptr.Deref(l.Spec.Strategy, ""); s != coordinationv1.OldestEmulationVersion {
		t.Fatalf("strategy = %q, want it kept", s)
	}
	if transitions(l) != 1 {
		t.Fatalf("token = %d, want 1", transitions(l))
	}
	w.checkNoOverlap()
}
