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

// Package elector elects one leader among many replicas with a
// coordination.k8s.io/v1 Lease, and runs a function only while the
// replica leads.
//
//	e, err := elector.New(elector.Config{
//		Leases:    clientset.CoordinationV1().Leases("team-a"),
//		Namespace: "team-a",
//		Name:      "my-controller",
//		Identity:  os.Getenv("POD_NAME"),
//	})
//	...
//	err = e.Run(ctx, func(ctx context.Context, term elector.Term) error {
//		// Lead until ctx is cancelled; fence writes with term.Token.
//	})
//
// # Compatibility
//
// The Lease record is the one client-go's tools/leaderelection LeaseLock
// writes (holderIdentity, leaseDurationSeconds, acquireTime, renewTime,
// leaseTransitions, which grows by one on every change of holder; an empty
// holder means released). elector and client-go candidates can share a
// Lease, so a team can switch one replica at a time.
//
// # How it differs from client-go
//
// Followers watch the Lease instead of polling it: a released Lease is
// taken within one round trip, and followers send no requests in steady
// state. The leader renews with one update that carries the cached
// resourceVersion; a conflict is checked with one read and, if another
// holder is confirmed, the leader steps down at once instead of retrying
// until its renew deadline. The Lease is released only after the leader
// function has returned. Each tenure carries a fencing token.
//
// # Safety guarantee
//
// At no instant do two candidates of one Lease both run their leader
// function, provided that:
//
//  1. every candidate has a distinct Identity;
//  2. clock rates differ from true time by less than
//     (LeaseDuration − RenewDeadline) / (LeaseDuration + RenewDeadline)
//     (a fifth with the defaults: 15s and 10s) — any clock offset is fine;
//  3. a leader function returns within StopGrace of its context being
//     cancelled (Run reports ErrStopOverrun otherwise, and Check fails
//     until the function returns);
//  4. the election loop is not paused past its stop point (a stopped or
//     starved process, see below);
//  5. only candidates write the Lease's holder, and nobody deletes the
//     Lease while a candidate leads (see Deleting the Lease).
//
// Why: a candidate judges expiry only on its own clock, from the moment it
// observed the record change, plus the record's leaseDurationSeconds (never
// less than its own LeaseDuration). It never compares a timestamp written
// by another host with its own clock. The leader measures from the moment
// it sent its last successful write, which precedes every observation of
// that write; it cancels the leader function at RenewDeadline − StopGrace
// after that moment and expects it to have returned by RenewDeadline,
// strictly before LeaseDuration has passed on any other candidate's clock.
// Every change of holder — an acquisition after expiry, a take-over of a
// released Lease, a re-creation; a planned handoff is argued below — goes
// through this rule and a write conditional on the resourceVersion the
// candidate read, so two candidates cannot both win one record.
//
// Failed requests never shorten these margins: a renewal that fails for
// any reason (timeout, 429, 5xx, a 403 from an API server that is
// restarting or from a deleted Role) is retried, at twice the renewal
// pace, with a request timeout that ends at the stop point; if none
// succeeds, the work is cancelled at the stop point as above. client-go's
// own retries of a 429 with Retry-After happen inside that timeout.
//
// A loop that runs late — its process was paused or starved of CPU past
// the stop point — notices only when it runs again. It then cancels the
// work and gives it StopGrace from that moment, possibly past the renew
// deadline; it logs "Election loop ran late". Assumption 4 is what this
// breaks: process pauses longer than the margins (a stopped process, a
// long garbage collection or swap) defeat any timeout-based lock. Use the
// fencing token to make a downstream store reject a stale leader's writes:
// see Example_fencing.
//
// At shutdown (Run's context ends) the leader keeps renewing for StopGrace
// while its function stops, then releases the Lease. A function that is
// still running StopGrace after the shutdown began ends the renewals; at
// the renew deadline Run returns ErrStopOverrun, and the Lease expires on
// its own, so a function that ignores its context never holds the Lease
// for ever.
//
// # Planned handoff
//
// An operator (kubectl elector handoff, RequestHandoff, Elector.Handoff)
// asks the holder to move leadership by writing the annotation
// elector.dev/handoff-to on the Lease: a candidate's identity, or empty
// for anyone else. spec.preferredHolder (Coordinated Leader Election, set
// with spec.strategy) naming another candidate is the same request. The
// leader sees it on its watch and:
//
//  1. cancels the leader function's context (context.Cause is
//     ErrHandedOff) and waits for it to return, renewing meanwhile as at
//     shutdown: StopGrace at most, after which renewals stop. A function
//     that returns after StopGrace but before the renew deadline of the
//     last renewal is still followed by the transfer (step 2); one that
//     has not returned by then falls under the ordinary overrun rule
//     (ErrStopOverrun at the renew deadline; the Lease is never handed
//     on, it expires), and so does a tenure whose renewals fail until
//     the stop point (no transfer either);
//  2. only after the function has returned, writes the Lease with the
//     resourceVersion it holds, removing the request: to a named target
//     (holderIdentity = target, leaseTransitions + 1), or, for anyone
//     else or itself, a release as at shutdown, after which it stands
//     aside (does not take the Lease) for one LeaseDuration unless
//     another candidate takes it first;
//  3. campaigns again as a follower: Run does not return.
//
// A transfer to the Lease's spec.preferredHolder clears that field (and
// keeps spec.strategy): a Coordinated client-go candidate treats a Lease
// that names it and carries a preferredHolder as the end of its term.
//
// The named target sees a Lease that names it, handed to it (the marker
// says by whom), and writes it itself — a renewal with the resourceVersion
// it read, keeping the token — before its function starts, so that its
// stop point and renew deadline count from its own write. A target that
// is not running never renews: the other candidates take the Lease after
// the lease duration, as after a crash, with the next token.
//
// Why this keeps the guarantee, under the same assumptions: the transfer
// is written after the old leader's function returned, whenever that is
// before the renew deadline (assumption 3 bounds how long that takes; if
// the function has not returned by the renew deadline, no transfer is
// written at all),
// and the target starts only after its own write, which is conditional on
// the transferred version and so comes after the transfer. Between the two
// nobody can act: the Lease names the target, which has not started, and
// the old leader has stopped. No clock is compared in this chain, so a
// handoff needs no waiting. Every other candidate still takes the Lease
// only by the ordinary rule (expiry on its own clock, measured from its
// observation of the last change, or a free Lease), with a write
// conditional on the version it read, so at most one of a target and a
// newcomer wins; a release for anyone else is the ordinary release after
// the function returned. While its function stops, the old leader renews
// on the usual schedule and the usual stop point still ends its tenure if
// renewals fail. A request seen on a lagging watch is confirmed with a
// consistent read before it is acted on; a request removed before that is
// ignored, one removed after the work was told to stop does not bring it
// back (the most recent request on the Lease picks the target). The token
// of the target's tenure is the old token + 1; a candidate that takes the
// Lease from a dead target writes + 2.
//
// Every write by elector carries the marker elector.dev/holder (JSON:
// identity, token, renewTime, version, "handoff": true). A client-go holder
// keeps the metadata it read, so its Lease carries either no marker or a
// stale one (another identity, token or renewTime — every client-go
// renewal writes a new renewTime, so a holder with the transfer's
// identity and token is caught too): such a holder ignores requests, and
// RequestHandoff refuses with ErrHolderCannotHandOff. See docs/handoff.md.
//
// # Deleting the Lease
//
// Deleting a Lease in use ends the tenure: the leader sees the deletion on
// its watch (or at its next renewal) and cancels its work at once, with
// StopGrace to return. Candidates that saw the Lease before it was deleted
// (this Elector, in this Run or an earlier one) wait out the last holder's
// lease on their own clock before re-creating it, or taking a re-created
// Lease that another candidate released — at least their own
// LeaseDuration, measured from when they saw the Lease gone, which is the
// last change they saw: a candidate whose watch was down while the holder
// went on renewing, and that missed the deletion event too, learns of the
// deletion only when it reads the Lease again, and waits from then — and
// re-create it with a token above every one they saw
// (TestDeletedLeaseIsWaitedOutFromTheDeletionByAFollowerThatMissedRenewals,
// TestTokenNeverGoesBackwardsAcrossRunsAfterADeletion,
// TestReleasedReCreationIsNotTakenBeforeTheDeletedHolderIsWaitedOut). A
// candidate that never saw the
// Lease — one that starts after the deletion, or one whose watch lagged or
// failed through a whole re-creation and second deletion while it waited
// out an earlier one — cannot know there was a holder: it creates the
// Lease at once (or when its own wait ends), with token 0 (or above only
// the tokens it saw). Its work may then
// overlap the old leader's for as long as the old leader takes to notice
// and stop (up to StopGrace after a watch event, more if its watch lags),
// and token 0 does not fence the old leader's writes. So do not delete a
// Lease while a candidate leads; to move leadership, request a planned
// handoff (above), stop the leader (it releases the Lease) or delete its
// Pod.
//
// # Permissions and an API server that comes and goes
//
// Run retries everything a restart of the process could not fix better:
// an unreachable API server, timeouts, 429, 5xx, and 403/401 denials once
// this Elector has had a request accepted (a kube-apiserver denies
// requests for a few seconds after it starts, while its authorization
// caches fill; a Role may be deleted and restored). While such a problem
// lasts, Err returns it (a *ForbiddenError names the missing permission
// and carries the Role that fixes it), the metric
// elector_permission_denied is 1 for denials, and the log says so at most
// once a minute. An Elector that has never had a request accepted gives up
// after Config.ForbiddenTimeout (15s) of denials and Run returns the
// *ForbiddenError: that permission is really missing.
//
// # Fencing tokens
//
// Term.Token is the Lease's leaseTransitions value written when the tenure
// began. elector writes a value higher than any it has seen, so tokens
// increase from tenure to tenure, also across deletion of the Lease while
// at least one candidate that saw it keeps running (see Deleting the
// Lease, and Planned handoff). leaseTransitions is a 32-bit integer: when it reaches 2^31−1,
// Run returns ErrTokensExhausted instead of wrapping to a negative token.
//
// # API cost
//
// A follower sends no requests in steady state: it only watches. Its watch
// asks for bookmarks and is restarted (from its last resourceVersion, one
// request) when it delivered neither an event nor a bookmark for
// max(2 RetryPeriod, LeaseDuration/3) (5s with the defaults), as a watch
// over a connection that died unnoticed would: a live holder renews more
// often than that, so this happens only after a fault, and a follower's
// takeover after the holder crashed stays within LeaseDuration plus that
// timeout of the holder's last renewal even if its watch hung
// (TestHungWatchIsRestartedAndTakeoverStaysWithinALease,
// TestBookmarksKeepAQuietWatchAlive). A watch request that gets no answer
// is given up after APITimeout, like every other request, and sent again
// (TestUnansweredWatchRequestIsRetried). A holder that renews less often than
// that timeout makes its followers restart their watch at that pace. A
// leader writes once per
// RetryPeriod, as client-go does with the same timing (the defaults,
// 15s/10s/2s, are one write per 2/15 of the lease); a failed write is
// retried at twice that pace until the stop point. Elections that share a
// watch renew at phases spread over the period, so that a process leading
// a thousand of them does not renew them in one burst.
//
// # Many elections
//
// A process with many elections in one namespace shares one watch with
// NewSharedWatch instead of opening one per Lease.
//
// # Testing
//
// Package fake provides an in-memory Lease API for unit tests of code
// that uses elector; it is not for production.
package elector
