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
	"strings"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
)

// requested returns the handoff targets the plugin wrote on the Lease,
// in order (the updates that set the request annotation).
func requested(cs interface{ Actions() []k8stesting.Action }) []string {
	var to []string
	for _, a := range cs.Actions() {
		u, ok := a.(k8stesting.UpdateAction)
		if !ok {
			continue
		}
		if l, ok := u.GetObject().(*coordinationv1.Lease); ok {
			if v, ok := l.Annotations[annotationHandoffTo]; ok {
				to = append(to, v)
			}
		}
	}
	return to
}

// TestHandoffChecksCandidates: handoff refuses (exit 7, one line, no
// write) a target that no Ready Pod shows running, and a handoff to
// anyone else when the holder's workload has no other Ready Pod; --force
// asks anyway.
func TestHandoffChecksCandidates(t *testing.T) {
	lease := func() runtime.Object { return newLease("team-a", "web", "web-abc-1", 4, electorMarker) }
	deploy := []runtime.Object{
		pod("web-abc-1", ofReplicaSet("web", "abc")),
		pod("web-def-2", ofReplicaSet("web", "def")), // the rollout's new ReplicaSet
		pod("web-abc-3", ofReplicaSet("web", "abc"), notReady),
		pod("other-xyz-4", ofReplicaSet("other", "xyz")),
		pod("bare"),
	}
	terminating := pod("web-abc-5", ofReplicaSet("web", "abc"), func(p *corev1.Pod) {
		now := metav1.NewTime(t0)
		p.DeletionTimestamp = &now
	})
	tests := []struct {
		name    string
		objs    []runtime.Object
		args    []string
		code    int
		stderr  string // a substring of the one line
		request []string
	}{
		{
			"typo", deploy,
			[]string{"--to", "web-abc-l"},
			ExitCannotHandOff,
			`refusing to hand team-a/web to "web-abc-l": there is no Pod "web-abc-l" in namespace team-a, so nothing shows that a candidate "web-abc-l" is running, and a target that never takes the Lease leaves it without a leader for its lease duration (15s).`, nil,
		},
		{
			"not ready", deploy,
			[]string{"--to", "web-abc-3"},
			ExitCannotHandOff,
			`refusing to hand team-a/web to "web-abc-3": its Pod web-abc-3 is not Ready (ContainersNotReady), so it would not take the Lease`, nil,
		},
		{"terminating", append(deploy, terminating), []string{"--to", "web-abc-5"}, ExitCannotHandOff, "its Pod web-abc-5 is terminating", nil},
		{"ready target", deploy, []string{"--to", "web-def-2"}, ExitTimeout, "web-abc-1 did not hand off team-a/web within 1ms", []string{"web-def-2"}},
		{"forced typo", deploy, []string{"--to", "web-abc-l", "--force"}, ExitTimeout, "did not hand off", []string{"web-abc-l"}},
		{"anyone, another ready pod of the deployment", deploy, nil, ExitTimeout, "Other candidates (Ready Pods of Deployment/web): web-def-2.", []string{""}},
		{
			"anyone, no other ready pod",
			[]runtime.Object{deploy[0], deploy[2], deploy[3]},
			nil, ExitCannotHandOff,
			"refusing to hand team-a/web to anyone else: Deployment/web has no other Ready Pod, so no other candidate would take the Lease and web-abc-1 would take it back after releasing it. Scale Deployment/web up first, or pass --force to ask anyway", nil,
		},
		{
			"anyone, holder is not a pod",
			[]runtime.Object{deploy[1]},
			nil, ExitCannotHandOff,
			`refusing to hand team-a/web to anyone else: the holder "web-abc-1" is not a Pod in namespace team-a`, nil,
		},
		{"anyone, forced", []runtime.Object{deploy[0]}, []string{"--force"}, ExitTimeout, "did not hand off", []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := newFake(append([]runtime.Object{lease()}, tt.objs...)...)
			r := runFake(t, cs, append([]string{"handoff", "web", "--timeout", "1ms"}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tt.code, tt.stderr)
			}
			if tt.code == ExitCannotHandOff && (strings.Count(r.stderr, "\n") != 1 || r.stdout != "") {
				t.Errorf("a refusal is one line on stderr: stdout %q, stderr %q", r.stdout, r.stderr)
			}
			if got := requested(cs); strings.Join(got, ",") != strings.Join(tt.request, ",") || len(got) != len(tt.request) {
				t.Errorf("requests written: %q, want %q", got, tt.request)
			}
		})
	}
}

func TestWorkloadOf(t *testing.T) {
	yes := true
	sts := pod("db-0", func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: "StatefulSet", Name: "db", Controller: &yes}}
	})
	rsNoHash := pod("x", func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "plain-rs", Controller: &yes}}
	})
	for _, tt := range []struct {
		p    *corev1.Pod
		want string
	}{
		{pod("a", ofReplicaSet("web", "abc")), "Deployment/web"},
		{sts, "StatefulSet/db"},
		{rsNoHash, "ReplicaSet/plain-rs"},
		{pod("bare"), ""},
	} {
		if got := workloadOf(tt.p); got != tt.want {
			t.Errorf("workloadOf(%s) = %q, want %q", tt.p.Name, got, tt.want)
		}
	}
}
