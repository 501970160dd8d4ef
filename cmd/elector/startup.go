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

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/elector-dev/elector/internal/rbac"
)

// Start-up waits. A sidecar starts with its Pod, which may be while the API
// server is unreachable or restarting (a control-plane upgrade, a node
// reboot). Exiting then only gets the container restarted with the
// kubelet's back-off of up to five minutes, long after the API server is
// back, so the sidecar waits instead, serving HTTP (/readyz says why it is
// not ready). It exits only for what a restart cannot fix: bad flags, no
// credentials, credentials rejected, a permission that is really missing.
const (
	// recheckWindow is how long denied permissions (and rejected
	// credentials) are re-checked before the sidecar exits: a
	// kube-apiserver that has just started denies requests for a few
	// seconds while its authorization caches fill. The Role is printed
	// within 20 seconds of the start.
	recheckWindow = 15 * time.Second
	// backoffMin and backoffMax bound the wait between start-up attempts:
	// doubling from one second to four, so that a replica started during
	// an outage campaigns within four seconds of the API server's return
	// (within its lease plus three seconds, as the running ones do: e2e
	// TestAPIServerRestarts measured up to 5.8s with a cap of 30s). One
	// small request every four seconds per replica is less than a leader's
	// renewals.
	backoffMin = time.Second //nolint:revive // Min is minimum, not minutes
	backoffMax = 4 * time.Second
)

// startup is the state of the sidecar before it campaigns.
type startup struct {
	window     time.Duration
	backoffMin time.Duration
	backoffMax time.Duration

	mu     sync.Mutex
	reason string // why it waits; "" once it campaigns

	// unreachableSince is when the API server stopped answering; zero
	// while it answers. The change of state is logged, not each retry.
	unreachableSince time.Time
}

func newStartup() *startup {
	return &startup{window: recheckWindow, backoffMin: backoffMin, backoffMax: backoffMax}
}

// waiting is the reason the sidecar waits, for /readyz and /leader.
func (s *startup) waiting() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

func (s *startup) setWaiting(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reason = reason
}

// sleep waits d on the app's clock, or until ctx ends.
func (a *app) sleep(ctx context.Context, d time.Duration) {
	t := a.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C():
	}
}

// retrier paces the attempts of one start-up step.
type retrier struct {
	a        *app
	delay    time.Duration
	deniedAt time.Time // first denial of the current streak
}

func (a *app) retrier() *retrier { return &retrier{a: a} }

// unreachable records that the API server did not answer and waits
// before the next attempt. The first of a streak is logged as a warning;
// the retries only at debug level, so that an outage is one line in the
// log, and its end another (reachable).
func (r *retrier) unreachable(ctx context.Context, err error) {
	s := r.a.start
	r.delay = min(max(r.delay*2, s.backoffMin), s.backoffMax)
	s.setWaiting(oneLine(err))
	now := r.a.clock.Now()
	s.mu.Lock()
	first := s.unreachableSince.IsZero()
	if first {
		s.unreachableSince = now
	}
	s.mu.Unlock()
	if first {
		r.a.log.Warn("API server unreachable; waiting for it", "error", oneLine(err), "retryIn", r.delay.String())
	} else {
		r.a.log.Debug("API server still unreachable", "error", oneLine(err), "retryIn", r.delay.String())
	}
	r.a.sleep(ctx, r.delay)
}

// reachable records that the API server answered, and logs the end of
// an outage once.
func (a *app) reachable() {
	s := a.start
	s.mu.Lock()
	since := s.unreachableSince
	s.unreachableSince = time.Time{}
	s.mu.Unlock()
	if !since.IsZero() {
		a.log.Info("API server reachable again", "unreachableFor", a.clock.Since(since).Round(time.Millisecond).String())
	}
}

// denied records a denial and reports whether the window of re-checks is
// over. Otherwise it waits (never past the end of the window).
func (r *retrier) denied(ctx context.Context, msg string, err error) (final bool) {
	s := r.a.start
	now := r.a.clock.Now()
	if r.deniedAt.IsZero() {
		r.deniedAt = now
	}
	left := s.window - now.Sub(r.deniedAt)
	if left <= 0 {
		return true
	}
	r.delay = min(max(r.delay*2, s.backoffMin), s.backoffMax, left)
	s.setWaiting(oneLine(err))
	r.a.log.Warn(msg, "error", oneLine(err), "retryIn", r.delay.String(), "giveUpIn", left.Round(time.Millisecond).String()) //nolint:sloglint // callers pass a fixed message
	r.a.sleep(ctx, r.delay)
	return false
}

// identify waits until the API server answers and accepts the
// credentials, and returns who we are. ok is false when the sidecar must
// exit with code.
func (a *app) identify(ctx context.Context, kc *clients) (subject rbac.Subject, code int, ok bool) {
	r := a.retrier()
	for {
		subject, err := whoAmI(ctx, kc)
		var ue *unreachableError
		switch {
		case ctx.Err() != nil:
			return subject, ExitOK, false
		case errors.As(err, &ue):
			r.unreachable(ctx, err)
			continue
		}
		a.reachable()
		switch {
		case err == nil:
			return subject, ExitOK, true
		case errors.As(err, new(*rejectedError)):
			if r.denied(ctx, "The API server rejected the credentials; re-checking", err) {
				return subject, fail(a.stderr, err), false
			}
		default:
			return subject, fail(a.stderr, err), false
		}
	}
}

// checkPermissions asks the API server, with SelfSubjectAccessReviews,
// which of the needed permissions the caller lacks, re-checking denials
// for the start-up window. When some are still missing it prints, for each
// namespace, one summary line and the Role and RoleBinding that grant them,
// and returns ExitForbidden. A check the API server cannot answer (no
// SelfSubjectAccessReview) is logged and not fatal: a 403 at runtime gets
// the same explanation.
func (a *app) checkPermissions(ctx context.Context, kc *clients, sets []permissionSet) (code int, ok bool) {
	r := a.retrier()
	for {
		missing, err := missingPermissions(ctx, kc.api, kc.host, sets)
		var ue *unreachableError
		switch {
		case ctx.Err() != nil:
			return ExitOK, false
		case errors.As(err, &ue):
			r.unreachable(ctx, err)
			continue
		}
		a.reachable()
		switch {
		case err != nil:
			a.log.Warn("Unable to check permissions; continuing", "error", err)
			return ExitOK, true
		case len(missing) == 0:
			return ExitOK, true
		}
		if !r.denied(ctx, "Permissions missing; re-checking", errors.New(summarize(missing))) {
			continue
		}
		for _, set := range missing {
			printMissing(a.stderr, a.subject, set.namespace, set.rules, roleName(a.cfg.election))
		}
		return ExitForbidden, false
	}
}

// summarize names the missing permissions on one line.
func summarize(missing []permissionSet) string {
	var parts []string
	for _, set := range missing {
		names := make([]string, len(set.rules))
		for i, r := range set.rules {
			names[i] = r.String()
		}
		parts = append(parts, fmt.Sprintf("in namespace %s: %s", set.namespace, strings.Join(names, ", ")))
	}
	return "missing permissions " + strings.Join(parts, "; ")
}
