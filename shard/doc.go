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

// Package shard spreads K shards over the live replicas of a group, each
// shard owned by at most one replica at any instant, with the guarantees
// that package elector gives one election — per shard — and API cost that
// grows with the replicas, not the shards.
//
//	s, err := shard.New(shard.Config{
//		Leases:    clientset.CoordinationV1().Leases("team-a"),
//		Namespace: "team-a",
//		Group:     "workers",
//		Identity:  os.Getenv("POD_NAME"),
//		Shards:    64,
//	})
//	...
//	err = s.Run(ctx, func(ctx context.Context, shard int, term elector.Term) error {
//		// Work on shard until ctx is cancelled; fence writes with term.Token.
//	})
//
// # Objects
//
// All are coordination.k8s.io/v1 Leases in one namespace, labelled
// elector.dev/shard-group=<group>, so that one watch with that label
// selector (shared by everything in the replica) sees them all:
//
//   - a member Lease per replica, <group>-m-<hash of the identity>: an
//     ordinary elector election that only this replica campaigns for. Its
//     tenure (leaseTransitions when it began, the epoch) is the replica's
//     membership; renewing it is the only steady-state write;
//   - <group>-coordinator: an ordinary election among the replicas; its
//     leader plans the assignment;
//   - <group>-shards: the assignment, a JSON Table in the annotation
//     elector.dev/shards: for each shard its owner, the owner's epoch, a
//     fencing token and a pending handoff. It is written only on changes,
//     always with the resourceVersion read.
//
// # Safety guarantee
//
// No shard's function runs in two replicas at one instant, under the
// assumptions of package elector (distinct identities, bounded clock
// rates, functions that return within StopGrace, no pause past the stop
// point, nobody else writes the group's Leases or deletes them while in
// use). Why:
//
// A replica runs shard s only while (a) the newest table it has seen says
// s belongs to it in its current member epoch, with no handoff pending,
// and (b) its member tenure lasts: the shard functions run inside the
// member election's leader function, so they are cancelled at the stop
// point (RenewDeadline − StopGrace after the last successful renewal) and
// have returned by the renew deadline, as elector's leader work does.
//
// The table changes owner of s only in a write that carries the version
// read, so changes are totally ordered, and only in three ways:
//
//  1. Handoff: the coordinator marks s handoffTo=Q (the owner R keeps it).
//     R stops s's function, and only after it returned writes s → Q with
//     token + 1. Q starts only after it has seen that write. No clock is
//     involved: R stopped before the write, Q starts after it.
//  2. Shutdown: a leaving replica stops all its functions, then in one
//     write hands its shards to the least-loaded live members (token + 1),
//     then releases its member Lease. The same argument holds.
//  3. Eviction: the owner's member tenure is over. Either its member
//     Lease was released in the tenure's epoch (after all its functions
//     returned) or is in a newer epoch (its Run ended first), or the
//     coordinator judged it expired — no change for the lease duration on
//     the coordinator's own clock, counted from when it observed the
//     Lease's last version — and FENCED it: an update of the member Lease
//     with exactly that resourceVersion, emptying the holder. The fence
//     succeeds only if the member did not renew after the version judged,
//     so the member's last successful renewal was sent before the
//     coordinator observed it; the member stopped its functions by its
//     renew deadline, which is before that observation plus the lease
//     duration on any other clock (assumption 2), i.e. before the fence.
//     Only after a successful fence are the shards reassigned, with
//     token + 1. Without the fence a coordinator whose watch lags could
//     move shards of a live member.
//
// The coordinator's view of the member Leases (its watch) may be older
// than the table it plans on (a table read after a conflict is newer than
// the watch). So only a newer epoch, or a release in the epoch the table
// names, ends a tenure. A member Lease that the view does not have, or
// has in an older epoch (released or not), moves nothing until the
// coordinator reads it: if the API shows the tenure current (the watch
// lags), the shards stay; if it shows a newer epoch or a release in the
// tenure's epoch, they move; if the Lease does not exist or is in an older
// epoch (it was deleted, or re-created by a restarted replica), the tenure
// cannot renew it any more and its shards move a lease duration after that
// answer (TestCoordinatorWithALaggingMemberViewLeavesALiveOwnerAlone,
// TestOwnerStatusOlderOrAbsentMemberIsNeverGone,
// TestAbsentMemberLeaseIsReadBeforeItsShardsMove).
//
// A new owner (any of the three) starts only after seeing the write, in a
// live member tenure of the epoch the table names; a replica whose member
// tenure ended (fenced, lost) registers again in a new epoch and owns
// nothing until shards are assigned to that epoch. The coordinator's
// election is not needed for safety: every write it makes is conditional
// on the version it read; the election only keeps the planning in one
// place.
//
// Fencing tokens grow per shard: every change of owner writes the shard's
// token + 1 in the same write.
//
// The table never moves backwards in a replica: a version older than the
// newest it has seen — a late watch event, or a read answered before a
// newer write — is ignored (resourceVersions are compared, or, if they are
// not integers, generations), unless the Lease was deleted
// (TestViewTableNeverMovesBackwards). An assignment Lease that this version
// cannot parse (another format, a hand edit) counts as no table: the
// replica runs no shard on it, Err reports it, and the coordinator logs it
// and reads it again with a backoff (RetryPeriod doubling to a minute)
// until it is readable (TestUnreadableAssignmentBacksOffAndRecovers).
//
// Checked by: TestRandomSchedulesNeverDoubleOwn (seeded schedules of
// starts, SIGTERMs, kills, partitions and clock pauses on package fake,
// with a per-shard overlap and token checker), and against a real API
// server by test/shard and the chaos tier's TestShardedSchedule. Those run
// few interleavings in which a watch lags behind a read; the cases above
// that depend on it are checked by the unit tests named beside them.
//
// Deleting the assignment Lease: replicas that see the deletion stop all
// their shards; a coordinator that saw the table re-creates it with every
// token + 1; one that never saw it creates a fresh table (tokens from 0).
// A replica whose watch lags may then work on a shard that another
// replica got in the fresh table, for as long as its watch lags, as with
// a deleted Lease in package elector: do not delete it.
//
// # Balance and movement
//
// The coordinator plans on every change it sees: with N live members,
// q = K / N and r = K mod N, the r members that own the most (ties: the
// lower identity) may keep q + 1 shards, the others q. Over-quota members
// are asked to hand their highest-numbered surplus to under-quota members;
// unowned shards and shards of ended tenures are assigned directly; one
// write per round. Only the surplus moves, and moves need no waiting: a
// scale-up or a graceful scale-down is balanced within a few round trips
// (TestScaleUpAndDownMovesOnlyTheSurplus). A crashed replica's shards move
// after its lease duration (TestCrashedReplicaShardsMoveAfterTheLease). An
// owner asked for several handoffs hands each shard whose function was not
// running on at once, and the others in one write once all have stopped,
// or 50 ms after the first stopped
// (TestHandoffOfAShardNotRunningDoesNotWaitForASlowStop).
//
// # API cost
//
// Steady state: each replica renews its member Lease once per RetryPeriod,
// and the coordinator its election's Lease: N + 1 writes per period,
// whatever K is. Replicas that do not own a shard send nothing for it.
// The table is written only when shards move. Each replica holds one
// watch (list and watch of Leases in the namespace with a label
// selector).
//
// # Permissions
//
// get, list, watch, create and update on leases.coordination.k8s.io in the
// namespace (member Lease names are derived from identities, so
// resourceNames cannot restrict them).
//
// # Limits
//
// K is fixed for a group (MaxShards at most); a replica configured with
// another K gets ErrShardCountMismatch. Member Leases of replicas that
// left stay behind, released (one small Lease per identity ever used);
// delete them when their replica is gone for good (a deleted member Lease
// that the table still names costs a read and a lease duration before its
// shards move). Epochs restart at 0 in a re-created member Lease, so a
// replica whose Lease was deleted while the table named one of its
// tenures could, after enough new tenures, reach that epoch again; that
// is the one way a deletion breaks the guarantee, as with package
// elector's Leases: delete member Leases only of replicas that are gone.
package shard
