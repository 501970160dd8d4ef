// Package kube pins the Kubernetes control-plane binaries that elector's tests
// run: kube-apiserver from k8s.io/kubernetes and etcd from
// go.etcd.io/etcd/server/v3. It lives in its own module so that
// k8s.io/kubernetes never enters the dependency graph of the elector library.
//
// Build with the harness (test/cmd/controlplane build), not by hand.
package kube
