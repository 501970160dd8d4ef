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
