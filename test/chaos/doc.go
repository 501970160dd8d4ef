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

// Package chaos runs elector candidates against a real kube-apiserver and
// etcd while a seeded schedule injects faults, and checks that leader
// tenures never overlap.
//
// Candidates are of two kinds:
//
//   - library candidates: goroutines of the test process, each with its
//     own elector.Elector, its own clock running fast or slow within the
//     documented bound, and its own TCP fault proxy in front of the API
//     server;
//   - sidecar replicas: the cmd/elector binary in exec mode, one process
//     per replica, each with its own fault proxy, running an actor child
//     while it leads. They can be killed (SIGKILL) and paused (SIGSTOP).
//
// Every candidate records the intervals during which it acts as leader on
// CLOCK_MONOTONIC (package history); actors also hold an exclusive flock
// on a shared file while acting, so an overlap is caught by the kernel
// even when a child is killed before it can record anything. The tools
// live in subpackages: faultproxy, history, skewclock and harness;
// cmd/chaos is the long run (`make chaos N=200`).
package chaos
