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
	"log/slog"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elector-dev/elector/internal/outage"
	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
)

// Token is a fencing token: the Lease's leaseTransitions value at the
// moment a tenure began. Every change of holder increases it, so a
// downstream store that remembers the highest token it has accepted can
// reject writes from a leader that was replaced (see Example_fencing).
type Token int64

// Term describes one tenure of this candidate as leader.
type Term struct {
	// Token fences this tenure's writes.
	Token Token
	// Identity is this candidate's identity.
	Identity string
	// Acquired is when this candidate acquired the Lease, on its own clock.
	Acquired time.Time
}

// Leader is a candidate's view of who leads.
type Leader struct {
	// Identity of the holder; empty when the Lease is free or unknown.
	Identity string
	// Self reports whether this candidate is the leader and its leader
	// function runs.
	Self bool
	// Since is the holder's acquireTime as written in the Lease (the
	// holder's clock; informational only).
	Since time.Time
	// Token is the fencing token of the holder's tenure.
	Token Token
	// Expiry is when this candidate would consider the lease expired if it
	// saw no further renewal, on this candidate's clock.
	Expiry time.Time
	// Handoff is the planned handoff requested of the holder and not done
	// yet; nil when none is pending.
	Handoff *HandoffRequest
}

// LeaderFunc is the work done while leading. Its ctx is cancelled when
// leadership ends; it must then return promptly (within Config.StopGrace).
type LeaderFunc func(ctx context.Context, term Term) error

// Errors returned by Run; test them with errors.Is.
var (
	// ErrLeadershipLost means this candidate led and lost the Lease:
	// renewals failed until the renew deadline, or another holder took it.
	ErrLeadershipLost = errors.New("elector: leadership lost")
	// ErrStopOverrun means the leader function did not return in time
	// after its context was cancelled: by the renew deadline, and never
	// sooner than StopGrace. It is still running and mutual exclusion is
	// no longer guaranteed: exit the process.
	ErrStopOverrun = errors.New("elector: leader function did not return before the renew deadline")
	// ErrAlreadyRunning means Run was called while another Run of the same
	// Elector had not returned.
	ErrAlreadyRunning = errors.New("elector: Run is already running")
)

// Elector campaigns for one Lease. Create it with New; it is safe for
// concurrent use. Run may be called again after it returns.
type Elector struct {
	cfg     Config
	leases  LeaseClient
	log     *slog.Logger
	clk     clock.WithTicker
	metrics *metrics
	running atomic.Bool
	// hadAccess: the API server accepted a request of this Elector, so
	// later denials are transient (see Config.ForbiddenTimeout).
	hadAccess atomic.Bool
	// maxToken is the highest leaseTransitions any Run of this Elector
	// has seen, so that tokens grow across Runs. Only the running Run
	// uses it.
	maxToken int32
	// sawLease: some Run of this Elector saw the Lease exist, and lastRec
	// is the last record it saw. A later Run that finds the Lease gone
	// treats that as a deletion seen now (see round.update). Only the
	// running Run uses them.
	sawLease bool
	lastRec  record

	mu        sync.Mutex
	view      Leader
	leading   bool // the tenure runs: the leader function has not been told to stop
	working   bool // the leader function has not returned
	lastRenew time.Time
	synced    bool
	subs      map[*subscriber]struct{}
	// problem is the last failed request's error; nil once one succeeds.
	problem      error
	deniedLogged time.Time
	// lastHolder is the last non-empty holder seen, for the metric of
	// leader changes.
	lastHolder string
}

// New validates cfg and returns an Elector.
func New(cfg Config) (*Elector, error) {
	cfg, err := cfg.validated()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer, cfg.Namespace, cfg.Name)
	var warn error
	if errors.Is(err, errMasterStatus) {
		warn, err = err, nil
	}
	if err != nil {
		return nil, err
	}
	e := &Elector{
		cfg:     cfg,
		log:     cfg.Logger.With("lease", cfg.Namespace+"/"+cfg.Name, "identity", cfg.Identity),
		clk:     cfg.Clock,
		metrics: m,
		subs:    map[*subscriber]struct{}{},
	}
	// An outage of the API server is logged once when requests start
	// failing and once when they are answered again (package outage):
	// once per SharedWatch for the electors that share one, else once
	// per Elector. Requests and answers pass unchanged.
	tracker := outage.New(e.log, cfg.Clock)
	if cfg.Watch != nil {
		tracker = outage.TrackerOf(cfg.Watch.leases)
	}
	e.leases = outage.Wrap(cfg.Leases, tracker)
	if warn != nil {
		e.log.Warn("standard metric not exported", "metric", metricMasterStatus, "err", warn)
	}
	if cfg.Registerer != nil {
		// Another Elector of the same election on this Registerer has
		// registered its view already; that one is reported.
		if _, err := register(cfg.Registerer, prometheus.Collector(newViewCollector(e))); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Leader returns this candidate's current view of the leader.
func (e *Elector) Leader() Leader {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.view
}

// Synced reports whether this Elector has read the Lease at least once,
// so that Leader reflects the cluster. It stays true from then on —
// between Runs and through API-server outages (Err says what is wrong
// then) — so that a readiness check gated on it does not take every
// replica out of its Service at once during an outage. It suits a
// readiness check that does not depend on who leads.
func (e *Elector) Synced() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.synced
}

// Deadline returns, while this candidate leads, the time on this
// candidate's clock by which its leader work must have stopped unless a
// renewal succeeds first: the last successful write plus RenewDeadline.
// A watchdog outside the election loop (such as the sidecar's for its
// child process) can enforce it.
func (e *Elector) Deadline() (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leading {
		return time.Time{}, false
	}
	return e.lastRenew.Add(e.cfg.RenewDeadline), true
}

// Check is a health check in the shape of controller-runtime's
// healthz.Checker: it fails while the leader function runs past the renew
// deadline of its last successful renewal — the function overran its stop
// (also after Run returned ErrStopOverrun, until it returns) or the
// election loop is stuck — so that a liveness probe restarts the process.
func (e *Elector) Check(_ *http.Request) error {
	e.mu.Lock()
	working, last := e.working, e.lastRenew
	e.mu.Unlock()
	if !working {
		return nil
	}
	if overdue := e.clk.Since(last) - e.cfg.RenewDeadline; overdue > 0 {
		return fmt.Errorf("elector: leader of %s/%s has not renewed for %v (renew deadline %v)",
			e.cfg.Namespace, e.cfg.Name, e.clk.Since(last).Round(time.Millisecond), e.cfg.RenewDeadline)
	}
	return nil
}

// Run campaigns for the Lease and, while this candidate leads, runs fn.
// It returns after one tenure, or when ctx ends, or on an error that
// retries cannot fix. A planned handoff (see RequestHandoff) ends a tenure
// without ending Run: fn's context is cancelled with the cause
// ErrHandedOff, and once fn has returned and the Lease is handed on, Run
// campaigns again as a follower and may run fn again in a later tenure.
// Run returns:
//
//   - nil: ctx ended (the Lease was released if this candidate led), or fn
//     returned nil and the Lease was released;
//   - fn's error, wrapped, after the Lease was released;
//   - ErrLeadershipLost, wrapped with the reason (renewals failed until
//     the stop point, or another holder took the Lease);
//   - ErrStopOverrun when fn did not return within StopGrace of its
//     context being cancelled, at the renew deadline at the earliest (also
//     at shutdown): exit the process;
//   - *ForbiddenError when this Elector has never had a request accepted
//     and the API server denied every request for ForbiddenTimeout;
//   - ErrTokensExhausted when leaseTransitions cannot grow any more.
//
// Everything else is retried while Run runs: an unreachable or restarting
// API server, 429 and 5xx answers, and denials once this Elector has had
// access (a Role deleted and restored, an API server whose authorization
// caches are still filling). Err reports such a problem while it lasts.
//
// The Lease is released only after fn has returned.
func (e *Elector) Run(ctx context.Context, fn LeaderFunc) error {
	if !e.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer e.running.Store(false)

	mb := newMailbox()
	var stop func()
	if e.cfg.Watch != nil {
		stop = e.cfg.Watch.subscribe(e.cfg.Name, mb)
	} else {
		stop = watchOwn(e.leases, e.cfg.Name, &e.cfg, mb)
	}
	defer stop()

	r := &round{e: e, mb: mb, maxToken: e.maxToken, seen: e.sawLease, rec: e.lastRec}
	defer func() {
		e.maxToken = max(e.maxToken, r.maxToken)
		e.sawLease, e.lastRec = r.seen, r.rec
	}()
	defer r.stopTimers()
	return r.run(ctx, fn)
}

// round is the state of one Run: what this candidate knows of the Lease.
type round struct {
	e  *Elector
	mb *mailbox

	known      bool                  // an observation arrived
	lease      *coordinationv1.Lease // latest known Lease; nil if absent
	rec        record                // its record (the last one seen, even after deletion)
	observedAt time.Time             // local time rec last changed, or the Lease was seen gone
	// seen: this Elector has seen the Lease exist (in this Run or an
	// earlier one), so a Lease found missing was deleted, and is
	// re-created only after the last holder's lease and with a higher
	// token.
	seen      bool
	maxToken  int32     // highest leaseTransitions seen
	lastWrite time.Time // local time our last successful write was sent
	// asideUntil: after a handoff this candidate does not take the Lease
	// before this local time, unless another holder took it meanwhile.
	asideUntil time.Time
	// goneHolderUntil: a Lease held by another candidate was deleted (or
	// replaced by a new incarnation) in this candidate's view; its holder
	// may act until this local time, so no acquisition — not even of a
	// released re-creation — happens before it.
	goneHolderUntil time.Time

	timer clock.Timer // the follower's one timer: lease expiry or a retry

	// deniedSince is when the current streak of denied requests began;
	// zero when the last request was accepted. deniedT fires when the
	// streak becomes final (only before this Elector ever had access).
	deniedSince time.Time
	deniedErr   error
	deniedT     clock.Timer
}

func (r *round) stopTimer() {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}

func (r *round) stopTimers() {
	r.stopTimer()
	if r.deniedT != nil {
		r.deniedT.Stop()
		r.deniedT = nil
	}
}

// arm sets the single timer of the loop to fire after d.
func (r *round) arm(d time.Duration) {
	r.stopTimer()
	r.timer = newTimer(r.e.clk, d)
}

func (r *round) timerC() <-chan time.Time {
	if r.timer == nil {
		return nil
	}
	return r.timer.C()
}

// observe records a Lease state, from the watch or from our own requests,
// and publishes it to observers.
func (r *round) observe(l *coordinationv1.Lease) {
	r.update(l)
	if l != nil {
		req, ok := HandoffRequestOf(l)
		if !ok {
			req = HandoffRequest{}
		}
		r.e.publish(r.rec, r.expiry(), req, ok)
	}
}

// update records a Lease state, read from the API server, without
// publishing it.
func (r *round) update(l *coordinationv1.Lease) {
	r.accepted()
	if !r.known {
		r.e.mu.Lock()
		r.e.synced = true
		r.e.mu.Unlock()
	}
	first := !r.known
	r.known = true
	prev := r.lease
	r.lease = l
	if prev != nil && (l == nil || l.UID != prev.UID) && r.rec.holder != "" && r.rec.holder != r.e.cfg.Identity {
		// The incarnation it held is gone: its holder is waited out
		// from now, whatever happens to the next incarnation.
		r.goneHolderUntil = maxTime(r.goneHolderUntil, r.e.clk.Now().Add(r.rec.duration(r.e.cfg.LeaseDuration)))
	}
	if l == nil {
		// Keep rec: a deleted Lease is waited out. Its deletion is a change
		// seen now: whoever held the Lease may have renewed it until just
		// before the deletion, unseen if this candidate's watch was down
		// meanwhile, so its lease is measured from this moment, not from
		// the last record seen.
		if prev != nil || first && r.seen {
			r.observedAt = r.e.clk.Now()
		}
		return
	}
	r.seen = true
	rec := recordOf(l)
	if rec.holder != "" && rec.holder != r.e.cfg.Identity {
		r.asideUntil = time.Time{} // someone else took it: the usual rules apply
	}
	if !rec.equal(r.rec) || r.observedAt.IsZero() {
		r.e.sawHolder(rec.holder)
		r.rec = rec
		r.observedAt = r.e.clk.Now()
	}
	r.maxToken = max(r.maxToken, rec.transitions)
}

// sawHolder counts a change of leader: a holder other than the last one
// this Elector saw. The first sight is not a change, and a release
// followed by a new holder is one change, not two.
func (e *Elector) sawHolder(holder string) {
	if holder == "" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lastHolder != "" && e.lastHolder != holder {
		e.metrics.leaderChanged()
	}
	e.lastHolder = holder
}

func (r *round) expiry() time.Time {
	return r.observedAt.Add(r.rec.duration(r.e.cfg.LeaseDuration))
}

func (r *round) run(ctx context.Context, fn LeaderFunc) error {
	for {
		if err := r.finalDenial(); err != nil {
			return err
		}
		// Follower: when nothing is pending, take the Lease if it is free
		// or expired on this candidate's clock, else wait until it expires.
		if r.known && r.timer == nil {
			if at, ok := r.acquirableAt(r.e.clk.Now()); !ok {
				r.stopTimer()
				r.timer = timerAt(r.e.clk, at)
			} else {
				// Apply what the watch delivered first: a timer and a
				// watch event ready at once are picked at random by the
				// select below, and a state delivered but not taken (a
				// re-creation by another holder, then its deletion)
				// must be waited out and its token carried on before
				// this candidate writes.
				select {
				case <-r.mb.ready:
					if err := r.takeObservations(); err != nil {
						return err
					}
					continue
				default:
				}
				won, err := r.tryAcquire(ctx)
				switch {
				case err != nil:
					return err
				case won:
					handedOff, err := r.lead(ctx, fn)
					if !handedOff {
						return err
					}
					continue // a follower again after a planned handoff
				case r.timer == nil && ctx.Err() == nil:
					continue // lost a race; the state was read again
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.mb.ready:
			if err := r.takeObservations(); err != nil {
				return err
			}
		case <-r.timerC():
			r.timer = nil
		case <-timerC(r.deniedT):
			r.deniedT = nil // finalDenial decides
		}
	}
}

// takeObservations applies, in order, what the watch observed since the
// last take. Every state counts, not only the last: a Lease followed by
// its deletion tells a follower whom to wait out and which token to carry
// on. The error is only an error to return when a denial ends Run.
func (r *round) takeObservations() error {
	for _, o := range r.mb.take() {
		if o.err != nil {
			// The watch retries by itself; a denial may end Run.
			if isDenied(o.err) {
				if err := r.denied(o.err, "watch"); err != nil {
					return err
				}
			} else {
				r.e.failed(o.err, "watch")
			}
			continue
		}
		r.stopTimer()
		r.observe(o.lease)
	}
	return nil
}

// mayAcquire reports whether this candidate may try to take the Lease now,
// or how long it must wait.
func (r *round) mayAcquire() (time.Duration, bool) {
	at, ok := r.acquirableAt(r.e.clk.Now())
	return at.Sub(r.e.clk.Now()), ok
}

// acquirableAt is mayAcquire as of now, with the local instant to wait
// for when the answer is no: an instant, not a duration, so that a timer
// armed for it with timerAt fires at once if the clock has passed it
// meanwhile (a fake clock stepped by a test, or a slow goroutine).
func (r *round) acquirableAt(now time.Time) (time.Time, bool) {
	if !r.asideUntil.IsZero() {
		if r.asideUntil.After(now) {
			return r.asideUntil, false // standing aside after a handoff
		}
		r.asideUntil = time.Time{}
	}
	if r.goneHolderUntil.After(now) {
		return r.goneHolderUntil, false // the holder of a deleted incarnation may still act
	}
	if r.lease != nil && (r.rec.holder == "" || r.rec.holder == r.e.cfg.Identity) {
		return now, true // released, or ours from a previous run
	}
	if r.observedAt.IsZero() {
		return now, true // never existed as far as we know
	}
	// Held, or deleted (r.lease == nil): wait out the lease of the last
	// record seen, measured from the last change seen (the deletion
	// included), with at least this candidate's own LeaseDuration.
	at := r.expiry()
	return at, !at.After(now)
}

// tryAcquire writes this candidate into the Lease. It reports whether it
// won; losing a race is not an error.
func (r *round) tryAcquire(ctx context.Context) (bool, error) {
	e := r.e
	now := truncate(e.clk.Now())
	rec := record{
		holder:       e.cfg.Identity,
		durationSecs: int32(e.cfg.LeaseDuration / time.Second),
		hasDuration:  true,
		acquireTime:  now,
		renewTime:    now,
	}
	release, err := e.cfg.Watch.acquireSlot(ctx)
	if err != nil {
		return false, nil // ctx ended
	}
	defer release()
	rctx, cancel := context.WithTimeout(ctx, e.cfg.APITimeout)
	defer cancel()
	sent := e.clk.Now()
	var got *coordinationv1.Lease
	// Every new tenure gets a higher token than any seen before, even if
	// leaseTransitions was edited backwards or the Lease was re-created.
	// A Lease that never existed starts at 0, as with client-go.
	//
	// A Lease handed to this candidate by the previous holder's planned
	// handoff (see transfer) already carries the new token: the target
	// keeps it and writes the Lease itself, a renewal, before its work
	// starts, so that its deadlines count from its own write.
	handed := r.lease != nil && r.rec.holder == e.cfg.Identity && handedTo(r.lease, e.cfg.Identity)
	// Another holder that neither released nor handed the Lease on: its
	// lease expired on this candidate's clock (mayAcquire).
	expired := r.lease != nil && r.rec.holder != "" && r.rec.holder != e.cfg.Identity
	switch {
	case handed:
		rec.transitions = r.rec.transitions
	case r.seen || r.lease != nil || !r.observedAt.IsZero() || r.maxToken > 0:
		// A Lease re-created after a deletion carries the token on:
		// tokens never go backwards for a candidate that saw the Lease.
		highest := max(r.maxToken, r.rec.transitions)
		if highest == math.MaxInt32 {
			return false, e.tokensExhausted()
		}
		rec.transitions = highest + 1
	}
	if r.lease == nil {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: e.cfg.Name, Namespace: e.cfg.Namespace}}
		rec.apply(l)
		e.setMarker(l, rec, "")
		e.setLabels(l)
		got, err = e.leases.Create(rctx, l, metav1.CreateOptions{})
	} else {
		l := r.lease.DeepCopy()
		rec.apply(l)
		e.setMarker(l, rec, "")
		e.setLabels(l)
		if req, ok := HandoffRequestOf(l); ok && !req.Preferred &&
			(req.To == e.cfg.Identity || req.To == "" && r.rec.holder != e.cfg.Identity) {
			clearRequest(l) // this acquisition fulfils the request
		}
		got, err = e.leases.Update(rctx, l, metav1.UpdateOptions{})
	}
	switch {
	case err == nil:
		r.lastWrite = sent
		r.update(got) // published by lead, together with Self
		if expired {
			e.metrics.tookOverExpired()
		}
		if handed {
			e.metrics.handedOff(handoffTo)
			e.log.Info("Took over the lease handed to this candidate", "token", rec.transitions)
		}
		return true, nil
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err) && r.lease != nil:
		// Someone else wrote first: read the winner.
		e.log.Debug("Lost the race for the lease", "reason", err)
		return false, r.refresh(ctx)
	case apierrors.IsNotFound(err):
		return false, fmt.Errorf("elector: unable to create Lease %s/%s: namespace %q does not exist; create it or set the namespace of the election: %w",
			e.cfg.Namespace, e.cfg.Name, e.cfg.Namespace, err)
	case ctx.Err() != nil:
		return false, nil
	case isDenied(err):
		verb := "update"
		if r.lease == nil {
			verb = "create"
		}
		if err := r.denied(err, verb); err != nil {
			return false, err
		}
		r.arm(jitter(e.cfg.RetryPeriod))
		return false, nil
	default:
		e.failed(err, "acquire")
		e.retrying("Unable to acquire lease, retrying", err)
		r.arm(jitter(e.cfg.RetryPeriod))
		return false, nil
	}
}

// setLabels sets Config.Labels on l, keeping its other labels.
func (e *Elector) setLabels(l *coordinationv1.Lease) {
	if len(e.cfg.Labels) == 0 {
		return
	}
	if l.Labels == nil {
		l.Labels = make(map[string]string, len(e.cfg.Labels))
	}
	for k, v := range e.cfg.Labels {
		l.Labels[k] = v
	}
}

// refresh reads the Lease directly (a consistent read) and observes it.
func (r *round) refresh(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, r.e.cfg.APITimeout)
	defer cancel()
	l, err := r.e.leases.Get(rctx, r.e.cfg.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		r.observe(nil)
		return nil
	case ctx.Err() != nil:
		return nil
	case isDenied(err):
		if err := r.denied(err, "get"); err != nil {
			return err
		}
		r.arm(jitter(r.e.cfg.RetryPeriod))
		return nil
	case err != nil:
		r.e.failed(err, "get")
		r.e.retrying("Unable to read lease, retrying", err)
		r.arm(jitter(r.e.cfg.RetryPeriod))
		return nil
	}
	r.observe(l)
	return nil
}

// newTimer is clk.NewTimer, except that a timer for a non-positive
// duration fires at once, whatever the clock (fake clocks fire timers only
// when stepped).
func newTimer(clk clock.Clock, d time.Duration) clock.Timer {
	if d > 0 {
		return clk.NewTimer(d)
	}
	c := make(chan time.Time, 1)
	c <- clk.Now()
	return firedTimer(c)
}

// timerAt returns a timer that fires at the instant at. A fake clock
// registers a timer relative to its time at registration; if the clock
// moved past at meanwhile, the timer fires at once instead of late.
func timerAt(clk clock.Clock, at time.Time) clock.Timer {
	t := newTimer(clk, at.Sub(clk.Now()))
	if _, fired := t.(firedTimer); !fired && !clk.Now().Before(at) {
		t.Stop()
		return newTimer(clk, 0)
	}
	return t
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

type firedTimer chan time.Time

func (t firedTimer) C() <-chan time.Time      { return t }
func (t firedTimer) Stop() bool               { return false }
func (t firedTimer) Reset(time.Duration) bool { return false }
