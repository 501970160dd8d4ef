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
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/elector-dev/elector"
)

// The tests in this file pin down defects found by an outside review of
// the election loop; each failed before its fix.

// counterValue reads one series of a counter from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// TestLeaderChangesCountsChangesNotFirstSights: a candidate that starts
// and finds a leader has seen no change of leader; a handoff from a to b
// is one change, whether or not the Lease was released in between.
func TestLeaderChangesCountsChangesNotFirstSights(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	reg := prometheus.NewRegistry()
	b := w.start("b", func(c *elector.Config) { c.Registerer = reg })
	follows(t, b, "a")
	if got := counterValue(t, reg, "elector_leader_changes_total"); got != 0 {
		t.Fatalf("elector_leader_changes_total = %v after b's first sight of a, want 0", got)
	}
	a.cancel() // release, then b takes over: one change
	wait(t, b.started, "b to lead")
	if got := counterValue(t, reg, "elector_leader_changes_total"); got != 1 {
		t.Fatalf("elector_leader_changes_total = %v after one handoff, want 1", got)
	}
}

// TestCheckFailsWhileTheLeaderFunctionOverruns: Check is the liveness
// probe of a process whose leader work ignores its stop. It must fail from
// the renew deadline until the work returns, also after Run returned
// ErrStopOverrun, and pass again once the work has returned.
func TestCheckFailsWhileTheLeaderFunctionOverruns(t *testing.T) {
	w := newWorld(t)
	a := w.startWith("a", nil, true)
	wait(t, a.started, "a to lead")
	w.setFail("a", apierrors.NewServiceUnavailable("etcd is down"))
	for w.clock.Now().Before(epoch.Add(elector.DefaultRenewDeadline - elector.DefaultStopGrace)) {
		w.clock.Step(elector.DefaultRetryPeriod / 2)
	}
	wait(t, a.cancelled, "a's work to be cancelled at the stop point")
	if err := a.e.Check(nil); err != nil {
		t.Fatalf("Check = %v before the renew deadline; the work may still stop in time", err)
	}
	w.clock.Step(elector.DefaultStopGrace + time.Millisecond) // past the renew deadline
	if err := a.result(t); !errors.Is(err, elector.ErrStopOverrun) {
		t.Fatalf("Run = %v, want ErrStopOverrun", err)
	}
	if err := a.e.Check(nil); err == nil {
		t.Fatal("Check passed while the leader function ran past its renew deadline")
	}
	close(a.release)
	wait(t, a.stopped, "the work to return")
	deadline := time.After(guard)
	for a.e.Check(nil) != nil { // the function's goroutine clears it after returning
		select {
		case <-deadline:
			t.Fatalf("Check = %v after the work returned", a.e.Check(nil))
		default:
			time.Sleep(time.Millisecond)
		}
	}
}

// TestShutdownWaitsForTheWorkOnlyUntilTheRenewDeadline: at shutdown the
// leader keeps its Lease while the work stops, but a function that ignores
// its cancelled context must not hold Run and the Lease for ever: after
// StopGrace the renewals stop, and at the renew deadline Run reports the
// overrun (and the metric counts it).
func TestShutdownWaitsForTheWorkOnlyUntilTheRenewDeadline(t *testing.T) {
	w := newWorld(t)
	reg := prometheus.NewRegistry()
	a := w.startWith("a", func(c *elector.Config) { c.Registerer = reg }, true)
	wait(t, a.started, "a to lead")
	a.cancel()
	wait(t, a.cancelled, "the work to be told to stop")
	stepUntil(t, w, time.Second, time.Minute, a.done, "Run to return")
	if err := a.result(t); !errors.Is(err, elector.ErrStopOverrun) {
		t.Fatalf("Run = %v, want ErrStopOverrun", err)
	}
	if got := counterValue(t, reg, "elector_stop_overruns_total"); got != 1 {
		t.Fatalf("elector_stop_overruns_total = %v, want 1", got)
	}
	if got := w.get().Spec.RenewTime.Time; got.After(epoch.Add(elector.DefaultStopGrace)) {
		t.Fatalf("last renewal at %v, want none after StopGrace (%v) past the shutdown", got.Sub(epoch), elector.DefaultStopGrace)
	}
	close(a.release)
}

// TestShutdownReleasesOnceTheWorkReturnsLate: work that takes longer than
// StopGrace but returns before the renew deadline still gets its Lease
// released.
func TestShutdownReleasesOnceTheWorkReturnsLate(t *testing.T) {
	w := newWorld(t)
	a := w.startWith("a", nil, true)
	wait(t, a.started, "a to lead")
	a.cancel()
	wait(t, a.cancelled, "the work to be told to stop")
	w.clock.Step(elector.DefaultStopGrace + elector.DefaultRetryPeriod)
	close(a.release)
	if err := a.result(t); err != nil {
		t.Fatalf("Run = %v, want nil: the work returned before the renew deadline", err)
	}
	if h := *w.get().Spec.HolderIdentity; h != "" {
		t.Fatalf("holder = %q, want the Lease released", h)
	}
}

// TestReleaseLeavesAnotherTenureAlone: release, like confirm, must check
// holder and token. Here, between the leader's last write and its release,
// the Lease is rewritten with the same holder name but another tenure's
// token (a hand edit, or a second process with the same identity):
// emptying it would end a tenure that is not ours.
func TestReleaseLeavesAnotherTenureAlone(t *testing.T) {
	w := newWorld(t)
	var armed atomic.Bool
	w.leases.SetReactor(func(ctx context.Context, verb, _, _ string) error {
		if verb != "update" || !armed.CompareAndSwap(true, false) {
			return nil
		}
		// Before a's release reaches the store, someone writes a record
		// of another tenure of "a".
		l, err := w.leases.Leases(ns).Get(ctx, lease, metav1.GetOptions{})
		if err != nil {
			return err
		}
		l.Spec.LeaseTransitions = ptr.To[int32](9)
		_, err = w.leases.Leases(ns).Update(ctx, l, metav1.UpdateOptions{})
		return err
	})
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	armed.Store(true)
	a.cancel()
	_ = a.result(t)
	s := w.get().Spec
	if *s.HolderIdentity != "a" || *s.LeaseTransitions != 9 {
		t.Fatalf("Lease = holder %q token %d, want the other tenure (a, 9) untouched", *s.HolderIdentity, *s.LeaseTransitions)
	}
}

// TestTokensExhaustedIsAClearError: leaseTransitions is an int32; a
// candidate must not wrap it to a negative token (fencing would accept
// nothing after it) nor panic, but say what to do.
func TestTokensExhaustedIsAClearError(t *testing.T) {
	w := newWorld(t)
	_, err := w.leases.Leases(ns).Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: lease},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(""), LeaseTransitions: ptr.To[int32](math.MaxInt32)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := w.start("a", nil)
	err = a.result(t)
	if !errors.Is(err, elector.ErrTokensExhausted) {
		t.Fatalf("Run = %v, want ErrTokensExhausted", err)
	}
	for _, want := range []string{"2147483647", "delete the Lease"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if got := *w.get().Spec.LeaseTransitions; got != math.MaxInt32 {
		t.Fatalf("leaseTransitions = %d, want it untouched", got)
	}
}

// TestLeaseDeletedByHandIsTakenAtOnceByANewcomer documents what doc.go
// says about deleting a Lease in use: candidates that saw the Lease wait
// out the last holder's lease, but one that never saw it cannot know
// there was a holder: it creates the Lease at once, with token 0.
func TestLeaseDeletedByHandIsTakenAtOnceByANewcomer(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	if err := w.leases.Leases(ns).Delete(context.Background(), lease, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// a learns from its watch or, if its watch started after the
	// deletion (from "now", as a real one does), at its next renewal.
	w.clock.Step(elector.DefaultRetryPeriod)
	if err := a.result(t); !errors.Is(err, elector.ErrLeadershipLost) {
		t.Fatalf("Run = %v, want ErrLeadershipLost once a sees the deletion", err)
	}
	before := w.clock.Now()
	c := w.start("c", nil) // started after the deletion
	term := wait(t, c.started, "the newcomer to create the Lease")
	if term.Token != 0 || w.clock.Now() != before {
		t.Fatalf("newcomer: token %d after %v, want token 0 at once", term.Token, w.clock.Now().Sub(before))
	}
}

// TestSyncedStaysTrueBetweenRuns: readiness gated on Synced must not flap
// when a tenure ends and Run is called again, nor during an outage: once
// the Lease has been read, Synced stays true.
func TestSyncedStaysTrueBetweenRuns(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	if !a.e.Synced() {
		t.Fatal("Synced() = false while leading")
	}
	a.cancel()
	if err := a.result(t); err != nil {
		t.Fatal(err)
	}
	if !a.e.Synced() {
		t.Fatal("Synced() = false after Run returned: readiness would flap between Runs")
	}
}

// TestSelfIsNeverPublishedWithAnOldToken: when the same candidate leads
// again, observers must see the new tenure's token together with Self,
// never Self with the token of the previous tenure.
func TestSelfIsNeverPublishedWithAnOldToken(t *testing.T) {
	w := newWorld(t)
	e, err := elector.New(w.config("a"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), idKey{}, "a")
	first := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		result <- e.Run(ctx, func(ctx context.Context, term elector.Term) error {
			close(first)
			<-ctx.Done()
			return nil
		})
	}()
	wait(t, first, "a to lead")
	// The tenure is lost with the Lease still naming a: renewals fail
	// until the stop point.
	w.setFail("a", apierrors.NewServiceUnavailable("etcd is down"))
	for w.clock.Now().Before(epoch.Add(elector.DefaultRenewDeadline - elector.DefaultStopGrace)) {
		w.clock.Step(elector.DefaultRetryPeriod / 2)
	}
	if err := wait(t, result, "a to lose"); !errors.Is(err, elector.ErrLeadershipLost) {
		t.Fatalf("Run = %v, want ErrLeadershipLost", err)
	}
	w.setFail("a", nil)

	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	views := e.Subscribe(sctx)
	wait(t, views, "the current view") // a, token 0, not Self
	// Read every view as it is sent (a parked reader gets each one).
	selfViews := make(chan elector.Leader, 16)
	go func() {
		for v := range views {
			if v.Self {
				selfViews <- v
			}
		}
		close(selfViews)
	}()
	second := make(chan elector.Term, 1)
	rctx, rcancel := context.WithCancel(ctx)
	go func() {
		result <- e.Run(rctx, func(ctx context.Context, term elector.Term) error {
			second <- term
			<-ctx.Done()
			return nil
		})
	}()
	term := wait(t, second, "a to lead again")
	v := wait(t, selfViews, "a's view as leader")
	if v.Token != term.Token {
		t.Fatalf("first view as leader %+v: token %d, but the tenure's token is %d", v, v.Token, term.Token)
	}
	rcancel()
	wait(t, result, "the second Run to return")
}
