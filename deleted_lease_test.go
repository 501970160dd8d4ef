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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/testwait"
)

// cutLeases is a candidate's path to the API server that can be cut:
// while down, every request fails and the open watches end. With
// expireOnce, the first watch after the cut heals is refused with 410
// Gone, so that the candidate reads the Lease again instead of resuming
// its watch (it never sees the deletion as an event).
type cutLeases struct {
	elector.LeaseClient
	down       atomic.Bool
	expireOnce atomic.Bool
	mu         sync.Mutex
	watches    []watch.Interface
}

func (c *cutLeases) err() error { return apierrors.NewServiceUnavailable("cut off") }

func (c *cutLeases) Get(ctx context.Context, name string, o metav1.GetOptions) (*coordinationv1.Lease, error) {
	if c.down.Load() {
		return nil, c.err()
	}
	return c.LeaseClient.Get(ctx, name, o)
}

func (c *cutLeases) Create(ctx context.Context, l *coordinationv1.Lease, o metav1.CreateOptions) (*coordinationv1.Lease, error) {
	if c.down.Load() {
		return nil, c.err()
	}
	return c.LeaseClient.Create(ctx, l, o)
}

func (c *cutLeases) Update(ctx context.Context, l *coordinationv1.Lease, o metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	if c.down.Load() {
		return nil, c.err()
	}
	return c.LeaseClient.Update(ctx, l, o)
}

func (c *cutLeases) Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	if c.down.Load() {
		return nil, c.err()
	}
	if o.ResourceVersion != "" && c.expireOnce.CompareAndSwap(true, false) {
		return nil, apierrors.NewResourceExpired("too old resource version: " + o.ResourceVersion)
	}
	wi, err := c.LeaseClient.Watch(ctx, o)
	if err == nil {
		c.mu.Lock()
		c.watches = append(c.watches, wi)
		c.mu.Unlock()
	}
	return wi, err
}

func (c *cutLeases) cut() {
	c.down.Store(true)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, wi := range c.watches {
		wi.Stop()
	}
	c.watches = nil
}

// TestDeletedLeaseIsWaitedOutFromTheDeletionByAFollowerThatMissedRenewals:
// doc.go promises that a candidate that saw a holder waits out that
// holder's lease before re-creating a deleted Lease. A follower cut off
// from the API server while the leader went on renewing must measure that
// lease from when it sees the Lease gone (the last change it saw), not
// from the last renewal it saw before the cut, which is long expired: the
// old leader's work may run until its own renew deadline. The re-created
// Lease carries a token above the old one.
func TestDeletedLeaseIsWaitedOutFromTheDeletionByAFollowerThatMissedRenewals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		relist bool
	}{
		{"the watch resumes and replays the deletion", false},
		{"the watch history expired and a read finds no Lease", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			a := w.startWith("a", nil, true) // a's work returns only when told to, at its renew deadline
			wait(t, a.started, "a to lead")
			bl := &cutLeases{LeaseClient: w.leases.Leases(ns)}
			b := w.start("b", func(c *elector.Config) { c.Leases = bl })
			follows(t, b, "a")

			bl.cut()
			bl.expireOnce.Store(tc.relist)
			// a renews for longer than a lease; b sees none of it.
			for w.clock.Since(epoch) < elector.DefaultLeaseDuration+elector.DefaultRetryPeriod {
				w.clock.Step(elector.DefaultRetryPeriod)
				w.updateBy("a")
			}
			lastRenewal := w.get().Spec.RenewTime.Time
			if err := w.leases.Leases(ns).Delete(context.Background(), lease, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			deleted := w.clock.Now()
			// a learns from its watch or, at the latest, from its next
			// renewal.
			deadline := time.After(guard)
			for seen := false; !seen; {
				select {
				case <-a.cancelled:
					seen = true
				case <-deadline:
					t.Fatal("timed out waiting for a to see the deletion and stop its work")
				case <-time.After(20 * time.Millisecond):
					if w.clock.Since(deleted) < elector.DefaultRetryPeriod {
						w.clock.Step(elector.DefaultRetryPeriod / 4)
					}
				}
			}
			bl.down.Store(false)

			// Step until b leads. a's work returns at the latest moment it
			// may: its renew deadline.
			aDeadline := lastRenewal.Add(elector.DefaultRenewDeadline)
			var aStopped time.Time
			var term elector.Term
			deadline = time.After(guard)
			for led := false; !led; {
				// b sees the deletion once its watch retries (within
				// 1.2 RetryPeriod of the heal), or a few steps later if
				// its loop runs late on a loaded machine.
				if limit := 2 * elector.DefaultLeaseDuration; w.clock.Since(deleted) > limit {
					t.Fatalf("b did not re-create the Lease within %v of the deletion", limit)
				}
				if aStopped.IsZero() && !w.clock.Now().Before(aDeadline) {
					close(a.release)
					aStopped = wait(t, a.stopped, "a's work to return")
				}
				w.clock.Step(elector.DefaultRetryPeriod / 4)
				select {
				case term = <-b.started:
					led = true
				case <-deadline:
					t.Fatal("timed out waiting for b to lead")
				case <-time.After(20 * time.Millisecond): // real time for b's loop to run
				}
			}
			w.checkNoOverlap()
			if aStopped.IsZero() || term.Acquired.Before(aStopped) {
				t.Fatalf("b re-created the Lease %v after the deletion, while a's work ran (until its renew deadline, %v after the deletion)",
					term.Acquired.Sub(deleted), aDeadline.Sub(deleted))
			}
			if term.Acquired.Sub(deleted) < elector.DefaultLeaseDuration {
				t.Fatalf("b re-created the Lease %v after the deletion, want at least the lease duration (%v)", term.Acquired.Sub(deleted), elector.DefaultLeaseDuration)
			}
			if term.Token != 1 {
				t.Fatalf("re-created Lease token = %d, want 1 (above a's 0)", term.Token)
			}
		})
	}
}

// TestTokenNeverGoesBackwardsAcrossRunsAfterADeletion: an Elector whose
// Run ended and that runs again after its Lease was deleted re-creates it
// with a token above every one it saw, and only after the lease of the
// last holder it saw, counted from when it found the Lease gone.
func TestTokenNeverGoesBackwardsAcrossRunsAfterADeletion(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	b := w.start("b", nil)
	follows(t, b, "a")
	a.cancel() // a releases: b leads with token 1
	if term := wait(t, b.started, "b to lead"); term.Token != 1 {
		t.Fatalf("b token = %d, want 1", term.Token)
	}
	b.cancel()
	if err := b.result(t); err != nil {
		t.Fatalf("b's Run = %v", err)
	}
	if err := w.leases.Leases(ns).Delete(context.Background(), lease, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// b's Elector runs again.
	again := make(chan elector.Term, 1)
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), idKey{}, "b"))
	done := make(chan error, 1)
	go func() {
		done <- b.e.Run(ctx, func(ctx context.Context, term elector.Term) error {
			w.enter("b")
			again <- term
			<-ctx.Done()
			w.leave("b")
			return nil
		})
	}()
	defer func() {
		cancel()
		wait(t, done, "b's second Run to return")
	}()
	start := w.clock.Now()
	var term elector.Term
	deadline := time.After(guard)
	for got := false; !got; {
		if w.clock.Since(start) > elector.DefaultLeaseDuration+elector.DefaultRetryPeriod {
			t.Fatal("b did not re-create the Lease within a lease of its second Run")
		}
		w.clock.Step(elector.DefaultRetryPeriod / 4)
		select {
		case term = <-again:
			got = true
		case <-deadline:
			t.Fatal("timed out waiting for b to lead again")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if term.Token != 2 {
		t.Fatalf("re-created Lease token = %d, want 2 (above the 1 b held)", term.Token)
	}
	if term.Acquired.Sub(start) < elector.DefaultLeaseDuration-elector.DefaultRetryPeriod/4 {
		t.Fatalf("b re-created the Lease %v into its second Run, want about a lease duration", term.Acquired.Sub(start))
	}
	w.checkNoOverlap()
}

// TestReleasedReCreationIsNotTakenBeforeTheDeletedHolderIsWaitedOut: a
// follower that saw a holder's Lease deleted waits out that holder's lease
// before any acquisition, also of a Lease re-created by someone who never
// saw the old one and released at once: the old holder may still act
// until its renew deadline (sim seed 703031429484, corpus seed 137).
func TestReleasedReCreationIsNotTakenBeforeTheDeletedHolderIsWaitedOut(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	b := w.start("b", nil)
	follows(t, b, "a")
	// Both must learn of the deletion from their watches: a watch opened
	// after it would have nothing to say, and with the fake clock still
	// no renewal would ever find it.
	testwait.Until(t, "a's and b's watches to open", func() bool { return w.leases.Watchers() >= 2 })
	if err := w.leases.Leases(ns).Delete(context.Background(), lease, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deleted := w.clock.Now()
	wait(t, a.cancelled, "a to see the deletion")
	// Someone that never saw a's Lease re-creates it, released.
	empty, zero := "", int32(0)
	re := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: lease, Namespace: ns},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &empty, LeaseTransitions: &zero},
	}
	if _, err := w.leases.Leases(ns).Create(context.Background(), re, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var term elector.Term
	deadline := time.After(guard)
	for got := false; !got; {
		if w.clock.Since(deleted) > 2*elector.DefaultLeaseDuration {
			t.Fatal("b did not take the re-created Lease within two leases of the deletion")
		}
		w.clock.Step(elector.DefaultRetryPeriod / 4)
		select {
		case term = <-b.started:
			got = true
		case <-deadline:
			t.Fatal("timed out waiting for b to lead")
		case <-time.After(20 * time.Millisecond): // real time for b's loop to run
		}
	}
	if d := term.Acquired.Sub(deleted); d < elector.DefaultLeaseDuration-elector.DefaultRetryPeriod/4 {
		t.Fatalf("b took the released re-creation %v after it saw a's Lease deleted, want at least a lease (%v): a may still act", d, elector.DefaultLeaseDuration)
	}
	if term.Token != 1 {
		t.Fatalf("token = %d, want 1 (above a's 0)", term.Token)
	}
	w.checkNoOverlap()
}
