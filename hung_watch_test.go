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
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/elector-dev/elector"
)

// idleTimeout is the watch idle timeout with the default timings:
// max(2 RetryPeriod, LeaseDuration/3).
const idleTimeout = elector.DefaultLeaseDuration / 3

// followerRequests counts id's requests other than watches.
func (w *world) followerRequests(id string) int {
	return w.count(id, "get") + w.count(id, "update") + w.count(id, "create") + w.count(id, "list")
}

// watchersOpen waits until n watches are open on the fake API.
func (w *world) watchersOpen(n int) {
	w.t.Helper()
	deadline := time.After(guard)
	for w.leases.Watchers() != n {
		select {
		case <-deadline:
			w.t.Fatalf("%d watches open, want %d", w.leases.Watchers(), n)
		case <-time.After(time.Millisecond):
		}
	}
}

// TestHungWatchIsRestartedAndTakeoverStaysWithinALease: a follower whose
// watch went silent without ending (a connection that died unnoticed)
// restarts it once it has been idle for longer than a live holder renews,
// sees the renewals it missed, sends no other request while the leader
// renews, and after the leader stops renewing (a crash) takes over within
// the lease plus the idle timeout of the last renewal — not one lease
// after its next failed attempt, which is what a never-restarted watch
// gave (up to two leases, with a write and a read per lease meanwhile).
func TestHungWatchIsRestartedAndTakeoverStaysWithinALease(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	b := w.start("b", nil)
	follows(t, b, "a")
	w.watchersOpen(2)
	if n := w.leases.HangWatches(); n != 2 {
		t.Fatalf("hung %d watches, want a's and b's", n)
	}
	before := w.followerRequests("b")
	watches := w.count("", "watch")
	renew := func() {
		w.clock.Step(elector.DefaultRetryPeriod)
		w.updateBy("a")
		<-time.After(20 * time.Millisecond) // real time for b's loop to take the renewal
	}
	// Both watches are silent past the idle timeout: each is restarted
	// once (a watch goroutine may arm its idle timer a step late).
	deadline := time.After(guard)
	for w.count("", "watch") < watches+2 {
		if w.clock.Since(epoch) > 2*elector.DefaultLeaseDuration {
			t.Fatalf("%d watch restarts within %v of silence, want 2", w.count("", "watch")-watches, 2*elector.DefaultLeaseDuration)
		}
		select {
		case <-deadline:
			t.Fatalf("%d watch restarts after the idle timeout, want 2", w.count("", "watch")-watches)
		default:
		}
		renew()
	}
	watches = w.count("", "watch")
	for range 4 {
		renew()
	}
	if got := w.followerRequests("b") - before; got != 0 {
		t.Fatalf("follower b sent %d requests other than watches while the leader renewed", got)
	}
	if got := w.count("", "watch") - watches; got != 0 {
		t.Fatalf("%d watch restarts while the leader renewed, after the hung watches were replaced", got)
	}
	// a stops renewing (its updates fail, as if it crashed).
	crash := w.get().Spec.RenewTime.Time
	w.setFail("a", apierrors.NewServiceUnavailable("a is gone"))
	limit := crash.Add(elector.DefaultLeaseDuration + idleTimeout + elector.DefaultRetryPeriod)
	var term elector.Term
	deadline = time.After(guard)
	for got := false; !got; {
		if w.clock.Now().After(limit) {
			t.Fatalf("b did not take over within %v of a's last renewal", limit.Sub(crash))
		}
		w.clock.Step(elector.DefaultRetryPeriod / 4)
		select {
		case term = <-b.started:
			got = true
		case <-deadline:
			t.Fatal("timed out waiting for b to take over")
		case <-time.After(20 * time.Millisecond): // real time for the loops to run
		}
	}
	if term.Acquired.Sub(crash) < elector.DefaultLeaseDuration {
		t.Fatalf("b took over %v after a's last renewal, before a's lease expired", term.Acquired.Sub(crash))
	}
	w.checkNoOverlap()
}

// TestBookmarksKeepAQuietWatchAlive: a Lease whose holder writes rarely
// gives the follower's watch no events; the API server's bookmarks prove
// it alive, so it is not restarted. Once neither comes, it is restarted
// within the idle timeout.
func TestBookmarksKeepAQuietWatchAlive(t *testing.T) {
	w := newWorld(t)
	now := metav1.NewMicroTime(epoch)
	if _, err := w.leases.Leases(ns).Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: lease, Namespace: ns},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To("slow"), LeaseDurationSeconds: ptr.To[int32](3600),
			AcquireTime: &now, RenewTime: &now,
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b := w.start("b", nil)
	follows(t, b, "slow")
	w.watchersOpen(1)
	deadline := time.After(guard)
	watches := w.count("", "watch")
	for range 16 { // four idle timeouts
		w.leases.Bookmark()
		select {
		case <-deadline:
			t.Fatal("timed out stepping")
		case <-time.After(20 * time.Millisecond): // real time for b's watch to take the bookmark
		}
		w.clock.Step(idleTimeout / 4)
	}
	if got := w.count("", "watch") - watches; got != 0 {
		t.Fatalf("the watch was restarted %d times while bookmarks came", got)
	}
	for w.count("", "watch") == watches {
		w.clock.Step(idleTimeout / 4)
		select {
		case <-deadline:
			t.Fatal("the watch was not restarted without events or bookmarks")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if got := w.followerRequests("b"); got != 0 {
		t.Fatalf("follower b's election sent %d requests, want none (its watch reads and watches)", got)
	}
}

// TestUnansweredWatchRequestIsRetried: a follower's watch request that
// gets no answer at all (sent on a connection that died unnoticed; the
// API server answers a watch at once, with its headers) is given up after
// APITimeout, like every other request, and sent again. Unbounded, it
// left the follower without a watch for ever: blind to the renewals, it
// judged the live leader expired every lease and sent an update with a
// stale resourceVersion (409) and a GET each time, in steady state
// (found by the simulator, class follower-requests).
func TestUnansweredWatchRequestIsRetried(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	w.watchersOpen(1)
	w.mu.Lock()
	w.hangWatches = 1
	w.mu.Unlock()
	watches := w.count("", "watch")
	b := w.start("b", nil)
	follows(t, b, "a") // from b's GET
	deadline := time.After(guard)
	for w.count("", "watch") == watches {
		select {
		case <-deadline:
			t.Fatal("timed out waiting for b's watch request")
		case <-time.After(time.Millisecond):
		}
	}
	before := w.followerRequests("b")
	// Three leases of renewals by a: b must see them on a watch.
	for w.clock.Since(epoch) < 3*elector.DefaultLeaseDuration {
		w.clock.Step(elector.DefaultRetryPeriod)
		w.updateBy("a")
		select {
		case <-deadline:
			t.Fatal("timed out stepping")
		case <-time.After(20 * time.Millisecond): // real time for b's loops to run
		}
	}
	if got := w.followerRequests("b") - before; got != 0 {
		t.Fatalf("follower b sent %d requests other than watches while the leader renewed (its watch request was never answered)", got)
	}
	w.watchersOpen(2)
	w.checkNoOverlap()
}
