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

// Package ctrl runs a controller-runtime manager's leader election with
// elector instead of client-go's loop. Replace one line:
//
//	mgr, err := ctrl.NewManager(cfg, opts)        // sigs.k8s.io/controller-runtime
//	mgr, err := electorctrl.NewManager(cfg, opts) // github.com/elector-dev/elector/ctrl
//
// NewManager reads the same manager.Options (LeaderElection,
// LeaderElectionID, LeaderElectionNamespace, LeaseDuration, RenewDeadline,
// RetryPeriod, LeaderElectionReleaseOnCancel, LeaderElectionConfig),
// campaigns for the same Lease with the same record, and turns
// controller-runtime's own election off. Replicas of a Deployment can
// therefore switch from plain controller-runtime one at a time.
//
// # What it guarantees
//
// Runnables that need leader election — controllers from the builder,
// plain Runnables, and any LeaderElectionRunnable whose
// NeedLeaderElection returns true — start only while this replica leads,
// and elector's safety guarantee covers them (see package elector): they
// are told to stop before the renew deadline of the last successful
// renewal, and the Lease is released only after every one of them has
// returned. Webhooks, the metrics server, health probes, caches and
// runnables with NeedLeaderElection() == false run on every replica from
// the start, as with controller-runtime. Warm-up (controllers with
// EnableWarmup) runs on every replica before it leads, as with
// controller-runtime.
//
// Elected is closed when this replica begins to lead. The tenure's
// fencing token is in the context of every leader-only runnable, and so
// in every reconciler's context: see TermFrom. AddHealthChecks adds
// elector's liveness and readiness checks to the manager's probes.
//
// # What it does not guarantee
//
//   - One term per process. A controller cannot be started twice, so when
//     the term ends — the Lease was lost, a leader-only runnable failed, or
//     the manager's context ended, or a planned handoff (kubectl elector
//     handoff) moved the Lease on — Start returns; a lost Lease returns an
//     error wrapping elector.ErrLeadershipLost, a handoff one wrapping
//     elector.ErrHandedOff. As with controller-runtime, exit the process
//     when Start returns; it campaigns again when restarted.
//   - Work that bypasses the manager is not gated: goroutines started from
//     main, from a webhook, or from a runnable with NeedLeaderElection() ==
//     false run on every replica. Fence writes with the token when that
//     matters.
//   - At shutdown, leader-only runnables get elector's StopGrace (default
//     2s with the default timings; WithStopGrace changes it) to return while
//     the leader keeps renewing. If GracefulShutdownTimeout ends Start
//     before they return, the process exits holding the Lease; that is
//     safe — the next leader waits for the Lease to expire — but slow.
//
// # Sharded mode
//
// NewShardedManager scales an operator out instead: K equal ranges of the
// 64-bit FNV-1a hash of each object's UID (or namespace, see ShardKey)
// are spread over the replicas by package shard, and for each range it
// owns a replica runs a controller-runtime manager of its own, set up by
// the caller's SetupFunc, whose informers list and watch with the range's
// shardSelector (Kubernetes 1.36+, gate ShardedListAndWatch) and drop
// what lies outside the range, so that the result is the same on a server
// that ignores the selector; such a server is detected from its list
// responses (no ListMeta.ShardInfo) and reported once in the log and in
// the gauge elector_ctrl_shard_selector_fallback.
//
// Guarantee: no object is reconciled by two replicas at one instant, for
// reconciles of an object's own events, under package shard's
// assumptions: an object lies in one range (TestEveryObjectHasExactlyOneRange),
// a range runs in at most one replica at a time, and a range's function
// returns — so the range can move — only after its manager's Start
// returned, that is after every reconcile of it returned
// (TestShardedReconcilesStopBeforeTheShardIsHandedOn). A reconcile that
// outlives StopGrace makes Start return elector.ErrStopOverrun
// (TestShardedOverrunFailsTheManager). TermFrom gives a sharded reconcile
// its shard's fencing token, RangeFrom its range. Secondary watches
// (Owns, Watches) map events across ranges unless the key is the
// namespace; see docs/sharded-controllers.md for the limits.
package ctrl
