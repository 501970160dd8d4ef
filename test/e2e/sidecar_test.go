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

package e2e

import (
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elector-dev/elector/test/internal/sidecar"
)

// baseArgs are the sidecar flags for the election of deploy/base, as a
// container would pass them, with a short ttl.
func baseArgs(t *testing.T, m *sidecar.Manifests) []string {
	return sidecar.LocalArgs([]string{"--election=" + election(t, m), "--http=0.0.0.0:4444"}, "--ttl="+ttl.String())
}

// TestDeployBaseReplicasAgree runs two sidecars with the ServiceAccount of
// deploy/base and nothing else: they elect one leader and serve the same
// answer on every endpoint a Deployment or a 0.5 client uses.
func TestDeployBaseReplicasAgree(t *testing.T) {
	t.Parallel() // own namespace, processes and files: see main_test.go
	m := render(t, "base")
	lease := election(t, m)
	n := setup(t, m)
	args := baseArgs(t, m)
	a, b := start(t, n, "replica-a", args...), start(t, n, "replica-b", args...)
	leader, _ := firstToLead(t, map[*sidecar.Replica]<-chan sidecar.Leader{a: watch(t, a), b: watch(t, b)})
	follower := a
	if leader == a {
		follower = b
	}
	agree(t, leader.Name, a, b)

	c := ctx(t)
	for _, r := range []*sidecar.Replica{a, b} {
		// The 0.5 answer, on any path and method, now with a Content-Type.
		for _, path := range []string{"/", "/anything"} {
			resp, err := r.Get(c, path)
			if err != nil {
				t.Fatal(err)
			}
			if want := `{"name":"` + leader.Name + `"}`; resp.Status != http.StatusOK || string(resp.Body) != want {
				t.Errorf("%s: GET %s = %d %s, want 200 %s", r.Name, path, resp.Status, resp.Body, want)
			}
			if resp.ContentType != "application/json" {
				t.Errorf("%s: GET %s Content-Type = %q, want application/json", r.Name, path, resp.ContentType)
			}
		}
		l, err := r.Leader(c)
		if err != nil {
			t.Fatal(err)
		}
		if l.Name != leader.Name || l.IsLeader != (r == leader) || l.Identity != r.Name {
			t.Errorf("%s: GET /leader = %+v, want name %s, isLeader %t, identity %s", r.Name, l, leader.Name, r == leader, r.Name)
		}
		for _, path := range []string{"/healthz", "/readyz"} {
			resp, err := r.Get(c, path)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != http.StatusOK {
				t.Errorf("%s: GET %s = %d %s, want 200", r.Name, path, resp.Status, resp.Body)
			}
		}
	}
	// The gauge is set once the leader function runs: allow a moment.
	for deadline := time.Now().Add(guard); metric(t, leader, "elector_is_leader", lease) != "1"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: elector_is_leader stays %s, want 1", leader.Name, metric(t, leader, "elector_is_leader", lease))
		}
	}
	if v := metric(t, follower, "elector_is_leader", lease); v != "0" {
		t.Errorf("%s (follower): elector_is_leader = %s, want 0", follower.Name, v)
	}

	l, err := n.Admin.CoordinationV1().Leases(n.Name).Get(c, lease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := l.Spec.HolderIdentity; h == nil || *h != leader.Name {
		t.Errorf("Lease %s holder = %v, want %s", lease, h, leader.Name)
	}
}

// TestSIGTERMHandsOver is the seed's `kubectl delete pod` of the leader:
// the kubelet sends SIGTERM to the sidecar, which releases the Lease and
// exits 0, and the other replica leads at once instead of after 30-40s.
func TestSIGTERMHandsOver(t *testing.T) {
	t.Parallel() // own namespace, processes and files: see main_test.go
	m := render(t, "base")
	n := setup(t, m)
	args := baseArgs(t, m)
	a := start(t, n, "replica-a", args...)
	first, err := sidecar.WaitUntilLeads(ctx(t), watch(t, a))
	if err != nil {
		t.Fatal(err)
	}
	b := start(t, n, "replica-b", args...)
	agree(t, a.Name, a, b)
	events := watch(t, b)

	sent := time.Now()
	if err := a.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	led, err := sidecar.WaitUntilLeads(ctx(t), events)
	if err != nil {
		t.Fatalf("replica-b did not lead after SIGTERM to replica-a: %v", err)
	}
	t.Logf("handoff: %s from SIGTERM to replica-a until replica-b's /watch said it leads (ttl %v)", ms(led.Seen.Sub(sent)), ttl)
	if code := exitCode(t, a); code != 0 {
		t.Errorf("replica-a exited with %d after SIGTERM, want 0\n%s", code, a.Output())
	}
	t.Logf("replica-a exited %s after SIGTERM", ms(time.Since(sent)))
	agree(t, b.Name, b)
	if led.Token <= first.Token {
		t.Errorf("token %d after the handoff, want above %d", led.Token, first.Token)
	}
}

// TestEventsOnTheLease: a handoff leaves core/v1 Events about the Lease
// (the 0.5 image failed with "selfLink was empty").
func TestEventsOnTheLease(t *testing.T) {
	t.Parallel() // own namespace, processes and files: see main_test.go
	m := render(t, "base")
	lease := election(t, m)
	n := setup(t, m)
	args := baseArgs(t, m)
	a := start(t, n, "replica-a", args...)
	if _, err := sidecar.WaitUntilLeads(ctx(t), watch(t, a)); err != nil {
		t.Fatal(err)
	}
	b := start(t, n, "replica-b", args...)
	events := watch(t, b)
	if err := a.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := sidecar.WaitUntilLeads(ctx(t), events); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, a); code != 0 {
		t.Fatalf("replica-a exited with %d after SIGTERM, want 0", code)
	}

	// Events are written in the background: poll.
	want := []string{"replica-a BecameLeader", "replica-a StoppedLeading", "replica-b BecameLeader"}
	c := ctx(t)
	var got []string
	for {
		evs, err := n.LeaseEvents(c, lease)
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, e := range evs {
			if e.InvolvedObject.Kind != "Lease" || e.InvolvedObject.APIVersion != "coordination.k8s.io/v1" ||
				e.InvolvedObject.Name != lease || e.InvolvedObject.Namespace != n.Name || e.InvolvedObject.UID == "" {
				t.Fatalf("Event %s refers to %+v, want the Lease %s/%s with its UID", e.Name, e.InvolvedObject, n.Name, lease)
			}
			got = append(got, e.ReportingInstance+" "+e.Reason)
		}
		if containsAll(got, want) {
			break
		}
		if c.Err() != nil {
			t.Fatalf("Events on Lease %s: %q, want %q", lease, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	evs, _ := n.LeaseEvents(c, lease)
	for _, e := range evs {
		t.Logf("Event %s %s: %s", e.Type, e.Reason, e.Message)
	}
	for _, e := range evs {
		if e.Reason == "StoppedLeading" && !strings.Contains(e.Message, "replica-a") {
			t.Errorf("StoppedLeading message %q does not name replica-a", e.Message)
		}
	}
}

func containsAll(got, want []string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}
