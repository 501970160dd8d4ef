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

package migrate

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"

	"github.com/elector-dev/elector"
)

// Guard returns a leader function for Elector.Run that takes the old lock,
// then runs fn while holding it, and releases it after fn has returned.
// fn's context ends when the tenure ends or when the old lock is lost (the
// renewals fail until the stop point, or another holder appears); Guard
// then returns an error wrapping ErrLockLost, which ends the tenure.
func (l *Lock) Guard(fn elector.LeaderFunc) elector.LeaderFunc {
	return func(ctx context.Context, term elector.Term) error {
		if err := l.Validate(); err != nil {
			return err
		}
		// A release from the previous tenure still in flight ends first
		// (it is bounded by APITimeout), so that it cannot empty the
		// record this tenure writes.
		if err := l.Wait(ctx); err != nil {
			return nil //nolint:nilerr // ctx ended: no tenure, as after acquire
		}
		o, rec, sent, err := l.acquire(ctx)
		if o == nil {
			return err // ctx ended (nil) or a final error
		}
		return l.hold(ctx, term, fn, o, rec, sent)
	}
}

// renewInterval is the pace of renewals: the Elector's, but never faster
// than the record's precision.
func (l *Lock) renewInterval() time.Duration { return max(l.RetryPeriod, minRenewInterval) }

// acquire polls the old lock until it is free, expired on this
// candidate's clock, or ours, and writes this candidate into it. It
// returns the object as written, or nil when ctx ended.
func (l *Lock) acquire(ctx context.Context) (*object, record, time.Time, error) {
	var (
		observed   record
		observedAt time.Time
		seen       bool
		waitingFor string
	)
	for {
		o, err := l.get(ctx)
		now := l.Clock.Now()
		switch {
		case ctx.Err() != nil:
			return nil, record{}, time.Time{}, nil //nolint:nilerr // ctx ended: a nil object and no error, as documented
		case apierrors.IsNotFound(err):
			o = nil
		case err != nil:
			l.retrying("Unable to read the old lock, retrying", err)
			if !l.sleep(ctx, jitter(l.RetryPeriod)) {
				return nil, record{}, time.Time{}, nil
			}
			continue
		}
		var rec record
		has := false
		if o != nil {
			rec, has = recordOf(o)
		}
		if has && (!seen || !sameRecord(rec, observed)) {
			observed, observedAt, seen = rec, now, true
			l.checkOldTTL(rec)
		}
		l.setHolder(rec.HolderIdentity)
		if has && rec.HolderIdentity != "" && rec.HolderIdentity != l.Identity {
			// Held: wait out the holder's lease on our clock, from when we
			// saw its record change, as old candidates do.
			d := max(time.Duration(rec.LeaseDurationSeconds)*time.Second, l.LeaseDuration)
			if left := observedAt.Add(d).Sub(now); left > 0 {
				if waitingFor != rec.HolderIdentity {
					waitingFor = rec.HolderIdentity
					l.Logger.Info("Waiting for the old lock", "holder", rec.HolderIdentity, "expiresIn", left.Round(time.Millisecond).String())
				}
				if !l.sleep(ctx, min(jitter(l.RetryPeriod), left)) {
					return nil, record{}, time.Time{}, nil
				}
				continue
			}
		}
		t := l.now()
		next := record{
			HolderIdentity: l.Identity, LeaseDurationSeconds: int(l.LeaseDuration / time.Second),
			AcquireTime: t, RenewTime: t, LeaderTransitions: rec.LeaderTransitions,
		}
		if has && rec.HolderIdentity != l.Identity {
			next.LeaderTransitions++
		}
		sent := l.Clock.Now()
		got, err := l.write(ctx, o, next)
		switch {
		case err == nil:
			l.setHolder(l.Identity)
			l.Logger.Info("Took the old lock", "previous", rec.HolderIdentity, "transitions", next.LeaderTransitions)
			return got, next, sent, nil
		case ctx.Err() != nil:
			return nil, record{}, time.Time{}, nil //nolint:nilerr // ctx ended: a nil object and no error, as documented
		case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err):
			continue // someone wrote first: read again
		default:
			l.retrying("Unable to take the old lock, retrying", err)
			if !l.sleep(ctx, jitter(l.RetryPeriod)) {
				return nil, record{}, time.Time{}, nil
			}
		}
	}
}

// checkOldTTL warns once when an old holder's record shows a lease
// duration (the 0.5 image's --ttl) shorter than our renew deadline: old
// candidates judge expiry with it, so they could take the lock while our
// work still runs after failed renewals.
func (l *Lock) checkOldTTL(rec record) {
	if rec.HolderIdentity == "" || rec.HolderIdentity == l.Identity || rec.LeaseDurationSeconds <= 0 {
		return
	}
	old := time.Duration(rec.LeaseDurationSeconds) * time.Second
	if old >= l.LeaseDuration {
		return
	}
	l.mu.Lock()
	warned := l.warnedTTL
	l.warnedTTL = true
	l.mu.Unlock()
	if !warned {
		l.Logger.Error("The old replicas' lease is shorter than ours: lower elector's lease duration (--ttl) to at most theirs",
			"holder", rec.HolderIdentity, "theirs", old.String(), "ours", l.LeaseDuration.String())
	}
}

// hold runs fn while renewing the old lock; see Guard.
//
// Renewals run beside the loop (one at a time), so that the loop notices
// the work's return at once: a renewal the API server does not answer
// lasts up to APITimeout, and a conflict adds a read; waiting for it would
// use up the StopGrace the Elector gives the work and turn a timely stop
// into ErrStopOverrun.
func (l *Lock) hold(ctx context.Context, term elector.Term, fn elector.LeaderFunc, o *object, rec record, lastWrite time.Time) error {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopPoint := func() time.Time { return lastWrite.Add(l.RenewDeadline - l.StopGrace) }
	l.setDeadline(lastWrite.Add(l.RenewDeadline), true)
	defer l.setDeadline(time.Time{}, false)

	renewT := timerAt(l.Clock, lastWrite.Add(l.renewInterval()))
	stopT := timerAt(l.Clock, stopPoint())
	defer func() { renewT.Stop(); stopT.Stop() }()
	var (
		renewed   chan renewal // the renewal in flight, nil if none
		stopRenew context.CancelFunc
	)
	defer func() {
		if stopRenew != nil {
			stopRenew()
		}
	}()
	done := make(chan error, 1)
	go func() { done <- fn(wctx, term) }()

	var lost error
	ctxDone := ctx.Done()
	for {
		select {
		case err := <-done:
			if lost != nil {
				return errors.Join(lost, err)
			}
			// The work has returned: report the end of the tenure at once
			// and release the old lock in the background. Its release
			// must not use up the StopGrace the Elector gives the work
			// (an API server that hangs would turn a timely stop into
			// ErrStopOverrun); it is bounded by APITimeout on its own.
			// A renewal in flight is abandoned; the release waits for it
			// to end and writes over its result.
			if stopRenew != nil {
				stopRenew()
			}
			l.releaseAsync(ctx, o, rec, renewed)
			return err
		case <-ctxDone:
			ctxDone = nil
			cancel(context.Cause(ctx)) // keep renewing while fn stops
		case <-stopT.C():
			if lost == nil {
				lost = fmt.Errorf("%w: no renewal succeeded within %v", ErrLockLost, l.RenewDeadline-l.StopGrace)
				l.Logger.Error("Stopping leader work: the old lock could not be renewed", "token", term.Token)
				cancel(lost)
			}
		case <-renewT.C():
			if lost != nil || renewed != nil {
				continue
			}
			next := rec
			next.RenewTime = l.now()
			// Bounded by the stop point on Lock.Clock (a context deadline
			// is on the wall clock, which Lock.Clock need not follow).
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), max(stopPoint().Sub(l.Clock.Now()), time.Millisecond))
			renewed, stopRenew = make(chan renewal, 1), rcancel
			go l.renew(rctx, o, next, renewed)
		case r := <-renewed:
			renewed = nil
			stopRenew()
			stopRenew = nil
			if lost != nil {
				continue
			}
			switch {
			case r.err == nil:
				o, rec, lastWrite = r.got, r.next, r.sent
				l.setDeadline(lastWrite.Add(l.RenewDeadline), true)
				stopT.Stop()
				stopT = timerAt(l.Clock, stopPoint())
				renewT = timerAt(l.Clock, r.sent.Add(l.renewInterval()))
			case apierrors.IsConflict(r.err), apierrors.IsNotFound(r.err):
				// Someone else wrote it (or deleted it): ours only if the
				// record still names us in the same tenure.
				if r.gerr == nil {
					if cur, ok := recordOf(r.cur); ok && cur.HolderIdentity == l.Identity && cur.LeaderTransitions == rec.LeaderTransitions {
						o, rec = r.cur, cur
						renewT = timerAt(l.Clock, l.Clock.Now())
						continue
					}
					cur, _ := recordOf(r.cur)
					l.setHolder(cur.HolderIdentity)
					lost = fmt.Errorf("%w: now held by %q", ErrLockLost, cur.HolderIdentity)
				} else if apierrors.IsNotFound(r.gerr) {
					l.setHolder("")
					lost = fmt.Errorf("%w: it was deleted", ErrLockLost)
				}
				if lost != nil {
					l.Logger.Error("Stopping leader work: the old lock was taken", "reason", lost, "token", term.Token)
					cancel(lost)
					continue
				}
				renewT = timerAt(l.Clock, minTime(r.sent.Add(l.renewInterval()/2), stopPoint()))
			default:
				l.retrying("Unable to renew the old lock, retrying", r.err)
				renewT = timerAt(l.Clock, minTime(r.sent.Add(l.renewInterval()/2), stopPoint()))
			}
		}
	}
}

// renewal is the outcome of one renewal of the old lock.
type renewal struct {
	next record    // the record written
	sent time.Time // when the write was sent, on Lock.Clock
	got  *object   // the object written
	err  error
	// After a conflict or NotFound: the object read again (cur), or why
	// it could not be read (gerr).
	cur  *object
	gerr error
}

// renew writes next into o, reads the object again if the write conflicts
// or finds it gone, and sends the outcome on out. ctx bounds both.
func (l *Lock) renew(ctx context.Context, o *object, next record, out chan<- renewal) {
	r := renewal{next: next, sent: l.Clock.Now()}
	r.got, r.err = l.write(ctx, o, next)
	if apierrors.IsConflict(r.err) || apierrors.IsNotFound(r.err) {
		r.cur, r.gerr = l.get(ctx)
	}
	out <- r
}

// releaseAsync starts release, after the renewal in flight (if any) has
// ended; Wait waits for it.
func (l *Lock) releaseAsync(ctx context.Context, o *object, rec record, renewing <-chan renewal) {
	done := make(chan struct{})
	l.mu.Lock()
	l.releasing = done
	l.mu.Unlock()
	go func() {
		defer close(done)
		if renewing != nil {
			// It was cancelled: it ends within moments.
			if r := <-renewing; r.err == nil {
				o = r.got
			}
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.APITimeout)
		defer cancel()
		l.release(rctx, o, rec)
	}()
}

// Wait waits until the release of the old lock that Guard started after
// its last tenure's work returned has ended, or ctx ends (its error is
// returned then). Guard releases the old lock after reporting the end of
// the tenure, within APITimeout; call Wait before the process exits so
// that old candidates can take the lock at once instead of after its
// lease.
func (l *Lock) Wait(ctx context.Context) error {
	l.mu.Lock()
	done := l.releasing
	l.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release empties the holder after the work has returned, so that an old
// candidate takes the lock at its next poll. Best effort: otherwise the
// record expires. ctx bounds it.
func (l *Lock) release(ctx context.Context, o *object, rec record) {
	next := rec
	next.HolderIdentity = ""
	next.RenewTime = l.now()
	for range 2 {
		_, err := l.write(ctx, o, next)
		switch {
		case err == nil:
			l.setHolder("")
			l.Logger.Info("Released the old lock")
			return
		case apierrors.IsConflict(err):
			cur, gerr := l.get(ctx)
			if gerr != nil {
				return
			}
			r, ok := recordOf(cur)
			if !ok || r.HolderIdentity != l.Identity || r.LeaderTransitions != rec.LeaderTransitions {
				return // not ours any more
			}
			o = cur
		default:
			l.Logger.Info("Unable to release the old lock; it will expire", "error", err)
			return
		}
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func (l *Lock) sleep(ctx context.Context, d time.Duration) bool {
	t := l.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// timerAt returns a timer that fires at the instant at, at once if it has
// passed (a fake clock fires a timer only when stepped).
func timerAt(clk clock.Clock, at time.Time) clock.Timer {
	if d := at.Sub(clk.Now()); d > 0 {
		return clk.NewTimer(d)
	}
	c := make(chan time.Time, 1)
	c <- clk.Now()
	return firedTimer(c)
}

type firedTimer chan time.Time

func (t firedTimer) C() <-chan time.Time      { return t }
func (t firedTimer) Stop() bool               { return false }
func (t firedTimer) Reset(time.Duration) bool { return false }

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
