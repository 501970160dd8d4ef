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

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/elector-dev/elector/shard"
)

// fakeRun is one run of the plugin against client-go's fake clientset.
type fakeRun struct {
	code           int
	stdout, stderr string
}

// newFake is a clientset holding objs, for fakeRun.
func newFake(objs ...runtime.Object) *fake.Clientset {
	return fake.NewClientset(objs...)
}

// runFake runs args in namespace team-a against cs, at t0 on a fake
// clock. The kubeconfig exists but is never used: the clients are cs's.
func runFake(t *testing.T, cs *fake.Clientset, args ...string) fakeRun {
	t.Helper()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://unused.invalid"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: team-a}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	a := &app{stdout: &out, stderr: &errb, clock: clocktesting.NewFakeClock(t0), kube: &kube{
		host: "https://unused.invalid", coordination: cs.CoordinationV1(), core: cs.CoreV1(),
		authz: cs.AuthorizationV1(), authn: cs.AuthenticationV1(), date: &serverDate{},
	}}
	code := a.run(context.Background(), append([]string{"--kubeconfig", kc}, args...))
	return fakeRun{code: code, stdout: out.String(), stderr: errb.String()}
}

// withLabels sets labels on a test Lease.
func withLabels(kv ...string) leaseOpt {
	return func(l *coordinationv1.Lease) {
		if l.Labels == nil {
			l.Labels = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			l.Labels[kv[i]] = kv[i+1]
		}
	}
}

// shardLeases is the sharded group workers in team-a: coordinator
// replica-a, four shards (replica-a owns 0 and 2, replica-b 1 and 3), and
// member Leases of replica-a and replica-b (held) and of a replica that
// left (released).
func shardLeases() []runtime.Object {
	member := func(identity string, token int32) *coordinationv1.Lease {
		return newLease("team-a", shard.MemberName("workers", identity), identity, token, electorMarker,
			withLabels(shard.LabelGroup, "workers", shard.LabelRole, shard.RoleMember))
	}
	gone := member("", 3)
	gone.Name = shard.MemberName("workers", "replica-gone")
	assign := newLease("team-a", shard.AssignmentName("workers"), "", 0,
		withLabels(shard.LabelGroup, "workers", shard.LabelRole, shard.RoleAssignment),
		annotate(shard.AnnotationShards, `{"format":1,"generation":5,"shards":[{"owner":"replica-a","token":2},{"owner":"replica-b","token":2},{"owner":"replica-a","token":2},{"owner":"replica-b","token":2,"handoffTo":"replica-a"}]}`))
	assign.Spec = coordinationv1.LeaseSpec{}
	return []runtime.Object{
		newLease("team-a", "workers-coordinator", "replica-a", 1, electorMarker,
			withLabels(shard.LabelGroup, "workers", shard.LabelRole, shard.RoleCoordinator)),
		assign, member("replica-a", 0), member("replica-b", 1), gone,
	}
}

// pod is a Pod of team-a, Running and Ready unless opts say otherwise.
func pod(name string, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue},
		}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// ofReplicaSet makes a Pod a Pod of the Deployment's ReplicaSet
// deploy-hash.
func ofReplicaSet(deploy, hash string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		yes := true
		p.Labels = map[string]string{"pod-template-hash": hash, "app": deploy}
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: deploy + "-" + hash, UID: "u", Controller: &yes}}
	}
}

func notReady(p *corev1.Pod) {
	p.Status.Conditions[0].Status = corev1.ConditionFalse
	p.Status.Conditions[0].Reason = "ContainersNotReady"
}
