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

// Package controlplane runs a real Kubernetes control plane (kube-apiserver
// and etcd) on the loopback interface for elector's integration tests.
//
// The binaries are built from source, from the pinned module in test/kube, the
// first time they are needed and cached under the user cache directory (see
// [Binaries]). [Start] launches etcd and kube-apiserver with RBAC, token
// authentication and ServiceAccount token issuance enabled, and returns a
// [ControlPlane] that hands out rest.Configs for the admin user, for the
// unprivileged user "alice" and for any ServiceAccount.
//
// With [Options.HA], the control plane is highly available: three
// kube-apiservers, sharing a serving certificate, the static tokens and the
// ServiceAccount keys, on a three-member etcd cluster, behind an in-process
// layer-4 load balancer that health-checks them on /readyz as a cloud load
// balancer would. Any member can be stopped and started again, to test
// clients against the failures of a real cluster.
//
// Test packages use [RunMain] from TestMain to share one control plane per
// package and to make sure it is stopped however the tests end.
//
// The package is Linux only: child processes are bound to the test process
// with PR_SET_PDEATHSIG so that they die with it, even on a crash.
package controlplane
