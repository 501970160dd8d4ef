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

package elector

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
)

// tenure is the leader side of a round.
type tenure struct {
	*round
	term Term
	ours record // the record of our last successful write
	// caughtUp: the watch has delivered the version of t.lease, so later
	// events are newer than it.
	caughtUp bool
	lost     error // why leadership ended; nil while leading
	renewT   clock.Timer
	stopT    clock.Timer // fires at the stop point: lastWrite + RenewDeadline - StopGrace
	deadT    clock.Timer // armed once lost: lastWrite + RenewDeadline
	// shutT fires StopGrace after shutdown began; if the work is still
	// running then, renewals stop and deadT is armed, so that work that
	// ignores its context cannot hold Run and the Lease for ever.
	shutT       clock.Timer
	shutOverdue bool // shutT fired with the work still running: no more renewals
	// handoff is the planned handoff this tenure committed to: the work
	// was told to stop and, once it has returned, the Lease is handed on
	// (see transfer). nil while none was requested.
	handoff *HandoffRequest
}

// lead runs fn while this candidate holds the Lease. It reports whether
// the tenure ended with a planned handoff, after which Run keeps
// campaigning as a follower. Timeline after each successful write sent at
// t (this candidate's clock):
//
//	t + RetryPeriod                     next renewal (the first one of a
//	                                    tenure with a SharedWatch comes at
//	                                    a per-election phase in the second
//	                                    half of the period)
//	t + RenewDeadline - StopGrace       no renewal succeeded: cancel fn
//	t + RenewDeadline                   fn must have returned
//	t + LeaseDuration (others' clocks)  the earliest another candidate may act
func (r *round) lead(ctx context.Context, fn LeaderFunc) (handedOff bool, err error) {
	e := r.e
	t := &tenure{
		round: r,
		term:  Term{Token: Token(r.rec.transitions), Identity: e.cfg.Identity, Acquired: r.lastWrite},
		ours:  r.rec,
	}
	defer t.stopTimers()
	e.beginTenure(r.rec, r.lastWrite)
	e.log.Info("Became leader", "token", t.term.Token)
	e.event(ReasonBecameLeader, "%s became leader (token %d)", e.cfg.Identity, t.term.Token)

	// Arm the timers before the work starts, so that they count from the
	// write, not from whenever the work got scheduled.
	t.renewT = timerAt(e.clk, r.lastWrite.Add(e.firstRenewal()))
	t.stopT = timerAt(e.clk, t.stopPoint())
	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan error, 1)
	e.setWorking(true)
	go func() {
		err := fn(fctx, t.term)
		e.setWorking(false)
		done <- err
	}()
	// A request already on the Lease (left by a holder that could not act
	// on it) is handled like one that arrives now.
	t.checkRequest(cancel)
	ctxDone := ctx.Done()
	for {
		select {
		case err := <-done:
			if t.lost == nil && !e.clk.Now().Before(t.stopPoint()) {
				// The loop ran late (its process was paused): the stop
				// point passed before the return was noticed. The tenure
				// ended there, whatever the order the events are seen in.
				t.stepDown(cancel, fmt.Errorf("%w: no renewal succeeded within %v", ErrLeadershipLost, e.cfg.RenewDeadline-e.cfg.StopGrace))
			}
			e.setLeading(false, time.Time{})
			if t.lost != nil {
				e.event(ReasonStoppedLeading, "%s stopped leading (token %d): %v", e.cfg.Identity, t.term.Token, t.lost)
				return false, t.lost
			}
			if t.handoff != nil {
				// The work has returned: only now is the Lease handed on.
				if err != nil && !errors.Is(err, context.Canceled) {
					e.log.Info("Leader function returned an error after a handoff request", "error", err, "token", t.term.Token)
				}
				t.transfer(ctx)
				return ctx.Err() == nil, nil
			}
			relErr := t.release(ctx)
			if err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)) {
				e.event(ReasonStoppedLeading, "%s stopped leading (token %d): %v", e.cfg.Identity, t.term.Token, err)
				return false, errors.Join(fmt.Errorf("elector: leader function failed: %w", err), relErr)
			}
			reason := "leader function returned"
			if ctx.Err() != nil {
				reason = "shutting down"
			}
			e.event(ReasonStoppedLeading, "%s stopped leading (token %d): %s", e.cfg.Identity, t.term.Token, reason)
			return false, relErr

		case <-ctxDone:
			// Shut down: stop the work, keep renewing while it stops
			// (StopGrace), then release. A handoff in progress keeps its
			// own StopGrace, which started earlier.
			ctxDone = nil
			e.log.Info("Stopping leader work", "reason", context.Cause(ctx))
			if t.handoff == nil {
				t.shutT = timerAt(e.clk, e.clk.Now().Add(e.cfg.StopGrace))
			}
			cancel(context.Cause(ctx))

		case <-timerC(t.shutT):
			t.shutT = nil
			if t.lost == nil {
				t.shutdownOverdue()
			}

		case <-timerC(t.renewT):
			t.renewT = nil
			if t.lost == nil && !t.shutOverdue {
				t.renew(ctx, cancel)
			}

		case <-timerC(t.stopT):
			t.stopT = nil
			if t.lost == nil && !t.shutOverdue {
				t.stepDown(cancel, fmt.Errorf("%w: no renewal succeeded within %v", ErrLeadershipLost, e.cfg.RenewDeadline-e.cfg.StopGrace))
			}

		case <-timerC(t.deadT):
			t.deadT = nil
			select {
			case err := <-done:
				// The function has returned; the loop saw both at once
				// (after a pause, say). Not an overrun: handle the return.
				done <- err
				continue
			default:
			}
			e.metrics.stopOverrun()
			e.log.Error("Leader work did not stop before the renew deadline; exit the process", "token", t.term.Token, "stopGrace", e.cfg.StopGrace)
			switch {
			case t.lost != nil:
				// Only ErrStopOverrun is wrapped: errors.Is(err, ErrLeadershipLost) stays false.
				err = fmt.Errorf("%w (%v)", ErrStopOverrun, t.lost) //nolint:errorlint // see above
			case t.handoff != nil:
				err = fmt.Errorf("%w (at a handoff)", ErrStopOverrun)
			default:
				err = fmt.Errorf("%w (at shutdown)", ErrStopOverrun)
			}
			e.event(ReasonStoppedLeading, "%s stopped leading (token %d): %v", e.cfg.Identity, t.term.Token, err)
			return false, err

		case <-r.mb.ready:
			obs := r.mb.take()
			if len(obs) == 0 || t.lost != nil {
				continue
			}
			// The leader needs only the newest state: any change it did
			// not write makes it read the Lease again (onEvent).
			if o := obs[len(obs)-1]; o.err != nil {
				// The watch retries by itself; renewals decide the tenure.
				e.failed(o.err, "watch")
				e.retrying("Lease watch failed while leading", o.err)
				if len(obs) == 1 {
					continue
				}
				obs = obs[:len(obs)-1]
			}
			t.onEvent(ctx, obs[len(obs)-1].lease, cancel)
		}
	}
}

func timerC(t clock.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C()
}

func (t *tenure) stopTimers() {
	for _, tm := range []clock.Timer{t.renewT, t.stopT, t.deadT, t.shutT} {
		if tm != nil {
			tm.Stop()
		}
	}
}

// stopPoint is when the work is cancelled unless a renewal succeeds first.
func (t *tenure) stopPoint() time.Time {
	c := &t.e.cfg
	return t.lastWrite.Add(c.RenewDeadline - c.StopGrace)
}

func (t *tenure) untilStop() time.Duration {
	return t.stopPoint().Sub(t.e.clk.Now())
}

// stepDown cancels the leader function at once and arms the deadline by
// which it must have returned.
func (t *tenure) stepDown(cancel context.CancelCauseFunc, reason error) {
	e := t.e
	t.lost = reason
	if t.renewT != nil {
		t.renewT.Stop()
		t.renewT = nil
	}
	if t.stopT != nil {
		t.stopT.Stop()
		t.stopT = nil
	}
	// On time, the work has until the renew deadline: StopGrace at a
	// stop-point step-down, more after a foreign holder appeared. A loop
	// that ran late (its process was paused or starved past the stop
	// point) still gives the work StopGrace from now: an overrun means the
	// work ignored its context, not that this process was frozen. The
	// timer is armed before the work is told to stop.
	now := e.clk.Now()
	deadline := t.lastWrite.Add(e.cfg.RenewDeadline)
	wait := deadline.Sub(now)
	t.deadT = timerAt(e.clk, maxTime(deadline, now.Add(e.cfg.StopGrace)))
	cancel(reason)
	e.setLeading(false, time.Time{})
	e.log.Info("Stepping down", "reason", reason, "token", t.term.Token)
	if wait < e.cfg.StopGrace/2 {
		e.log.Error("Election loop ran late: the renew deadline passed before stepping down; only fencing protects writes now",
			"late", (e.cfg.StopGrace - wait).String(), "token", t.term.Token)
	}
}

// shutdownOverdue stops renewals when the work has not returned StopGrace
// after shutdown (or a handoff) began, and arms the deadline at which Run reports the
// overrun: the renew deadline of the last renewal, as for any step-down.
func (t *tenure) shutdownOverdue() {
	e := t.e
	t.shutOverdue = true
	if t.renewT != nil {
		t.renewT.Stop()
		t.renewT = nil
	}
	deadline := t.lastWrite.Add(e.cfg.RenewDeadline)
	t.deadT = timerAt(e.clk, maxTime(deadline, e.clk.Now()))
	attrs := []any{
		"token", t.term.Token,
		"stopGrace", e.cfg.StopGrace.String(), "renewDeadlineIn", max(deadline.Sub(e.clk.Now()), 0).Round(time.Millisecond).String(),
	}
	if t.handoff != nil {
		e.log.Error("Leader work has not stopped within StopGrace of a handoff request; renewals stop", attrs...)
	} else {
		e.log.Error("Leader work has not stopped within StopGrace of shutdown; renewals stop", attrs...)
	}
}

// renew writes a new renewTime with the cached resourceVersion: one
// request per renewal.
func (t *tenure) renew(ctx context.Context, cancel context.CancelCauseFunc) {
	e := t.e
	budget := t.untilStop()
	if budget <= 0 {
		return // the stop timer fires now
	}
	rec := t.ours
	rec.renewTime = truncate(e.clk.Now())
	l := t.lease.DeepCopy()
	rec.apply(l)
	e.setMarker(l, rec, "")
	e.setLabels(l)

	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), min(e.cfg.APITimeout, budget))
	defer rcancel()
	sent := e.clk.Now()
	got, err := e.leases.Update(rctx, l, metav1.UpdateOptions{})
	e.metrics.renewed(e.clk.Since(sent), err)
	switch {
	case err == nil:
		t.ours = rec
		t.lastWrite = sent
		t.observe(got)
		t.caughtUp = false
		e.setLeading(true, sent)
		t.stopT.Stop()
		t.stopT = timerAt(e.clk, t.stopPoint())
		// The cadence counts from the send, so request latency does not
		// stretch the renew interval.
		t.renewT = timerAt(e.clk, sent.Add(e.cfg.RetryPeriod))
		t.checkRequest(cancel)
	case apierrors.IsConflict(err):
		// Someone wrote the Lease: read it; keep leading only if it is
		// still ours (a label edit, say) and renew again at once.
		if t.confirm(ctx, cancel) {
			t.renewT = newTimer(e.clk, 0)
		}
	case apierrors.IsNotFound(err):
		t.observe(nil)
		t.stepDown(cancel, fmt.Errorf("%w: the Lease was deleted", ErrLeadershipLost))
	default:
		// Transient, denials included (an API server restarting, a Role
		// being replaced): retry at twice the pace until the stop point,
		// which ends the work in time if no renewal gets through.
		raw := err
		err = e.failed(err, "update")
		if left := t.untilStop(); left > 0 {
			e.retryingAs(raw, "Unable to renew lease, retrying", err, "stopIn", left.Round(time.Millisecond).String())
		} else {
			e.retryingAs(raw, "Unable to renew lease before the stop point", err)
		}
		t.renewT = timerAt(e.clk, minTime(sent.Add(failedRenewRetry(e.cfg.RetryPeriod)), t.stopPoint()))
	}
}

// onEvent handles a watch event while leading. A watch may deliver events
// older than the Lease we hold from our own last write or read. Events with
// our record are adopted (newer metadata, such as a label edit) once the
// stream has reached the version we hold; anything else is confirmed with
// a consistent read.
//
// An event that carries a handoff request is never acted on as such: it is
// confirmed with a consistent read (one GET per request), so that a
// request removed meanwhile, delivered late by a lagging watch, is not
// acted on.
func (t *tenure) onEvent(ctx context.Context, l *coordinationv1.Lease, cancel context.CancelCauseFunc) {
	if l != nil {
		rec := recordOf(l)
		_, request := HandoffRequestOf(l)
		request = request && t.handoff == nil
		if rec.equal(t.ours) && !request {
			switch {
			case t.caughtUp:
				t.lease = l
			case l.ResourceVersion == t.lease.ResourceVersion:
				t.caughtUp = true
			}
			return
		} else if t.isOurs(rec) && !request {
			// An earlier renewal of this tenure, delivered late by a
			// lagging watch: nothing to confirm.
			return
		}
	}
	t.confirm(ctx, cancel)
}

// confirm reads the Lease and steps down unless it still names this
// candidate in this tenure. It reports whether leadership continues.
func (t *tenure) confirm(ctx context.Context, cancel context.CancelCauseFunc) bool {
	e := t.e
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), min(e.cfg.APITimeout, max(t.untilStop(), time.Millisecond)))
	defer rcancel()
	l, err := e.leases.Get(rctx, e.cfg.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		t.observe(nil)
		t.stepDown(cancel, fmt.Errorf("%w: the Lease was deleted", ErrLeadershipLost))
		return false
	case err != nil:
		// Unknown: the renewal timers decide.
		e.retrying("Unable to read lease", err)
		if t.renewT == nil {
			t.renewT = timerAt(e.clk, minTime(e.clk.Now().Add(e.cfg.RetryPeriod), t.stopPoint()))
		}
		return false
	}
	t.observe(l)
	rec := recordOf(l)
	if !t.isOurs(rec) {
		t.stepDown(cancel, fmt.Errorf("%w: the Lease is now held by %q (token %d)", ErrLeadershipLost, rec.holder, rec.transitions))
		return false
	}
	t.lease = l
	t.ours = rec
	t.caughtUp = false
	t.checkRequest(cancel)
	return true
}

// isOurs reports whether rec is a record of this tenure: our identity and
// our token. Another token under our name is another tenure.
func (t *tenure) isOurs(rec record) bool {
	return rec.holder == t.e.cfg.Identity && Token(rec.transitions) == t.term.Token
}

// failedRenewRetry is how soon a failed renewal is retried: twice the
// steady pace, so that a leader that renews as rarely as client-go's
// defaults (2/15 of the lease) still gets several attempts before its stop
// point after a blip.
func failedRenewRetry(retryPeriod time.Duration) time.Duration {
	return jitter(retryPeriod / 2)
}

// firstRenewal is when, after acquiring, a tenure renews first. Elections
// that share a watch (many in one process, often acquired in one burst)
// renew first at a phase in [RetryPeriod/2, RetryPeriod) drawn from their
// name, so that a thousand of them do not renew in one burst for ever;
// later renewals keep the cadence. A lone election renews at RetryPeriod.
func (e *Elector) firstRenewal() time.Duration {
	p := e.cfg.RetryPeriod
	if e.cfg.Watch == nil {
		return p
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(e.cfg.Name))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(e.cfg.Identity))
	return p/2 + time.Duration(h.Sum64()%uint64(p/2+1))
}

// release empties the holder, as client-go's ReleaseOnCancel does, so a
// follower takes over at once. It runs only after fn has returned.
func (t *tenure) release(ctx context.Context) error {
	e := t.e
	if e.cfg.KeepLease {
		return nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.APITimeout)
	defer cancel()
	for attempt := 0; attempt < 2; attempt++ {
		now := truncate(e.clk.Now())
		rec := t.ours
		rec.holder, rec.durationSecs, rec.acquireTime, rec.renewTime = "", 1, now, now
		l := t.lease.DeepCopy()
		rec.apply(l)
		e.setMarker(l, rec, "")
		got, err := e.leases.Update(rctx, l, metav1.UpdateOptions{})
		switch {
		case err == nil:
			t.observe(got)
			e.log.Info("Released lease", "token", t.term.Token)
			return nil
		case apierrors.IsConflict(err):
			// Release only this tenure, judged as confirm judges it:
			// same holder and same token.
			cur, gerr := e.leases.Get(rctx, e.cfg.Name, metav1.GetOptions{})
			if gerr != nil || !t.isOurs(recordOf(cur)) {
				return nil // no longer ours: nothing to release
			}
			t.lease, t.ours = cur, recordOf(cur)
		default:
			// The lease expires on its own; nothing is lost but time.
			e.log.Info("Unable to release lease; it will expire", "error", err)
			return nil
		}
	}
	return nil
}

// checkRequest commits this tenure to a planned handoff when the Lease
// it holds (t.lease, the latest state known) carries a request, and
// publishes the pending request for observers. Committing cancels the
// work, with ErrHandedOff as the cause, and gives it StopGrace to return
// while renewals go on, as at shutdown; the Lease is handed on only after
// it has returned (see lead and transfer).
func (t *tenure) checkRequest(cancel context.CancelCauseFunc) {
	e := t.e
	req, ok := HandoffRequestOf(t.lease)
	e.setHandoff(req, ok)
	if !ok || t.handoff != nil || t.lost != nil {
		return
	}
	t.handoff = &req
	e.log.Info("Handoff requested; stopping leader work", "to", req.To, "preferredHolder", req.Preferred, "token", t.term.Token)
	if t.shutT == nil && !t.shutOverdue {
		t.shutT = timerAt(e.clk, e.clk.Now().Add(e.cfg.StopGrace))
	}
	cancel(fmt.Errorf("%w (to %q)", ErrHandedOff, req.To))
}

// handoffAttempts bounds the writes of one transfer: a conflict is read
// and retried while the Lease is still this tenure's.
const handoffAttempts = 3

// transfer hands the Lease on after the work has returned from a handoff
// request: to a named target (a new token, leaseTransitions + 1, which the
// target keeps when it renews), or, for "anyone else" or this candidate
// itself, as a release while this candidate stands aside for one
// LeaseDuration. The request read last decides, so a newer request
// replaces the one that stopped the work; a request removed meanwhile does
// not bring the work back. Each write carries the resourceVersion of the
// Lease this tenure holds, so it fails if anyone else wrote meanwhile.
func (t *tenure) transfer(ctx context.Context) {
	e := t.e
	// Stand aside whatever happens: if the transfer fails, the Lease
	// still names this candidate, which must not take it back at once.
	t.asideUntil = e.clk.Now().Add(e.cfg.LeaseDuration)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.APITimeout)
	defer cancel()
	for attempt := 0; attempt < handoffAttempts; attempt++ {
		req := *t.handoff
		if cur, ok := HandoffRequestOf(t.lease); ok {
			req = cur
		}
		now := truncate(e.clk.Now())
		rec := t.ours
		rec.acquireTime, rec.renewTime = now, now
		handedBy := ""
		named := req.To != "" && req.To != e.cfg.Identity
		if named {
			highest := max(t.maxToken, rec.transitions)
			if highest == math.MaxInt32 {
				e.log.Error("Fencing tokens exhausted; releasing instead of handing off", "to", req.To)
				named = false
			} else {
				rec.holder, rec.transitions, handedBy = req.To, highest+1, e.cfg.Identity
			}
		}
		if !named {
			rec.holder, rec.durationSecs = "", 1 // as release does
		}
		l := t.lease.DeepCopy()
		rec.apply(l)
		clearRequest(l)
		if named && ptrDeref(l.Spec.PreferredHolder) == req.To {
			// A Coordinated client-go candidate that holds a Lease whose
			// spec.preferredHolder is set treats it as the end of its
			// term and never renews it: hand it over with the request
			// fulfilled (spec.strategy stays).
			l.Spec.PreferredHolder = nil
		}
		e.setMarker(l, rec, handedBy)
		got, err := e.leases.Update(rctx, l, metav1.UpdateOptions{})
		switch {
		case err == nil:
			e.metrics.handedOff(handoffFrom)
			if named {
				e.log.Info("Handed off lease", "to", req.To, "token", rec.transitions, "previousToken", t.term.Token)
				e.event(ReasonHandedOff, "%s handed off to %s (token %d)", e.cfg.Identity, req.To, rec.transitions)
			} else {
				e.log.Info("Released lease for a handoff; standing aside", "token", t.term.Token, "standAside", e.cfg.LeaseDuration.String())
				e.event(ReasonHandedOff, "%s released the lease to anyone else (token %d)", e.cfg.Identity, t.term.Token)
			}
			t.observe(got)
			return
		case apierrors.IsConflict(err):
			cur, gerr := e.leases.Get(rctx, e.cfg.Name, metav1.GetOptions{})
			if gerr != nil || !t.isOurs(recordOf(cur)) {
				if gerr == nil {
					t.observe(cur)
				}
				e.log.Info("Lease changed before the handoff; nothing to hand off", "error", gerr)
				return
			}
			t.lease, t.ours = cur, recordOf(cur)
		default:
			// Nothing is lost but time: the Lease expires and the target
			// (or anyone) takes it after the lease duration.
			e.log.Info("Unable to hand off lease; it will expire", "error", err)
			return
		}
	}
	e.log.Info("Unable to hand off lease after repeated conflicts; it will expire")
}

func ptrDeref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
