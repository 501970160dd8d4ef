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

// Package legacy runs the stand-in of the retired
// k8s.gcr.io/leader-elector:0.5 image (test/leaderelector05, a module of
// its own on client-go v0.23.16) as real processes against a test control
// plane, for tests of a rollout from 0.5 to elector.
//
// It builds the stand-in ([Build]), sets up a namespace whose
// ServiceAccount holds exactly the permissions 0.5 needed ([Setup],
// [Rules]), starts replicas ([Start]) that each lead their own process
// group and die with the calling process, follows their leadership and
// overlap reports in their logs ([Replica.Leading], [Replica.WaitFor],
// [Replica.Overlaps]), answers their 0.5 HTTP endpoint
// ([Replica.LeaderName]) and reads the lock record they write on the
// Endpoints object ([ReadRecord], [WatchRecords]).
//
//	bin, err := legacy.Build(ctx, t.TempDir())
//	ns, err := legacy.Setup(ctx, cp, "rollout", "my-app", t.TempDir())
//	r, err := legacy.Start(legacy.Options{Binary: bin, Kubeconfig: ns.Kubeconfig,
//		ID: "pod-a", Election: "my-app", Namespace: ns.Name, TTL: 4 * time.Second,
//		LeadFile: lockPath, Log: logWriter})
//	defer r.Kill()
//	at, err := r.WaitLeading(ctx, true)
//	name, err := r.LeaderName(ctx) // "pod-a", from GET /
//	rec, err := legacy.ReadRecord(ctx, ns.Admin, ns.Name, "my-app")
//
// With LeadFile set to the chaos harness's $CHAOS_LOCK, a stand-in leader
// and an elector leader's exec-mode command (test/chaos/cmd/actor) share
// one overlap detector: an exclusive flock held while leading.
package legacy
