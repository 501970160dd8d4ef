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

// Package sim is a deterministic simulator of the whole system, in the
// spirit of FoundationDB's simulation and TigerBeetle's VOPR: real
// elector candidates, migration guards, shard replicas and client-go
// tools/leaderelection candidates run against a simulated Lease API in a
// testing/synctest bubble, where time is virtual (a run of minutes takes
// milliseconds) and every fault is drawn from one seed.
//
// The simulated API server (server.go) is package fake's store —
// resourceVersion CAS, 409, 404, create races, watch history, 410 on a
// resume past it — behind a fault layer: latency on both ways of every
// request (so replies and watch events reorder), 429/500/503/403 and
// timeouts, replies lost after the write succeeded, watch streams that
// lag, end early, end with a 410 error event, fail to resume with 410,
// hang silently for ever, and send bookmarks. Nodes crash (their work
// stops at once), stop gracefully (scale down), restart with the same
// identity (scale up), are partitioned; their clocks run at rates within
// 90% of doc.go's bound, from arbitrary offsets. Shard runs add their
// own mix: a watch lag per replica, rolling restarts, faults aimed at the
// coordinator, quick restarts and a slow coordinator; the
// stale-coordinator scenario (StaleCoordinator, TestSimShardSeeds) is
// aimed at the outside review's shard double ownership. An operator requests
// planned handoffs, deletes the Lease by hand, and hand-edits the shard
// assignment table.
//
// Checkers (check.go, node.go, run.go): no two tenures of one election or
// one shard at one virtual instant; tokens strictly increase per election
// and per shard (an ordering checker on the history of tenure starts —
// the history is totally ordered by virtual time, so a linearizability
// checker adds nothing here); a leader within livenessBound after faults
// stop, and every shard owned at the end; no request from a follower in
// steady state; no loop without backoff (100 requests in one virtual
// second); RequestHandoff never accepts a request under a client-go
// holder; Run never reports ErrStopOverrun when the leader function
// returned within StopGrace. Exceptions are exactly doc.go's: a candidate
// that never received an incarnation of the Lease (its UID) before it was
// deleted by hand may overlap that incarnation's leader, and after such a
// deletion its token need only exceed every token it had received.
//
// Reproducibility: every decision of the simulator comes from the seed
// and the order of events in virtual time. The product's own randomness
// (retry jitter from math/rand/v2) and the Go scheduler's choice among
// ready goroutines are not seeded, so a seed replays the same scenario
// and fault rates but not always the same interleaving; a failing seed
// fails again in most replays (CHAOS.md, Simulation, has the numbers).
//
// make sim SEEDS=N runs N fresh seeds; make test-sim (part of make test)
// runs 60 s of fresh seeds (30 s of them in the stale-coordinator shard
// scenario, TestSimShardSeeds), shows each injected bug is found, and
// replays testdata/corpus.txt, the seeds that once found a bug.
package sim
