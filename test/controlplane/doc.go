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
