// Package elector elects one leader among many replicas with a
// coordination.k8s.io/v1 Lease, and runs a function only while the
// replica leads.
//
//	e, err := elector.New(elector.Config{
//		Client:    clientset.CoordinationV1(),
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
//     cancelled (Run reports ErrStopOverrun otherwise);
//  4. only candidates write the Lease's holder (deleting it by hand is
//     safe: followers wait out the last holder's lease).
//
// Why: a candidate judges expiry only on its own clock, from the moment it
// observed the record change, plus the record's leaseDurationSeconds (never
// less than its own LeaseDuration). It never compares a timestamp written
// by another host with its own clock. The leader measures from the moment
// it sent its last successful write, which precedes every observation of
// that write; it cancels the leader function at RenewDeadline − StopGrace
// after that moment and expects it to have returned by RenewDeadline,
// strictly before LeaseDuration has passed on any other candidate's clock.
//
// Process pauses longer than the margins (a stopped process, a long
// garbage collection or swap) defeat any timeout-based lock. Use the
// fencing token to make a downstream store reject a stale leader's
// writes: see Example_fencing.
//
// # Fencing tokens
//
// Term.Token is the Lease's leaseTransitions value written when the tenure
// began. elector writes a value higher than any it has seen, so tokens
// increase from tenure to tenure, also across deletion of the Lease while
// at least one candidate keeps running.
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
