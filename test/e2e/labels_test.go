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
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elector-dev/elector/test/internal/sidecar"
)

// TestLeaderLabelFollowsTheLeader runs deploy/examples/nginx as written
// (its RBAC, its Service, Pods from its template, the sidecar's flags from
// its Deployment): the leader-only Service selects the leader's Pod and no
// other, after a graceful handoff (SIGTERM) and after the leader is killed
// (SIGKILL), when the next leader also removes the dead one's label.
func TestLeaderLabelFollowsTheLeader(t *testing.T) {
	t.Parallel() // own namespace, processes and files: see main_test.go
	m := render(t, "examples/nginx")
	n := setup(t, m)
	container, err := m.ElectorContainer()
	if err != nil {
		t.Fatal(err)
	}
	args := sidecar.LocalArgs(sidecar.ContainerArgs(container), "--ttl="+ttl.String())
	label, ok := sidecar.Flag(args, "leader-label")
	if !ok {
		t.Fatalf("the example's elector has no --leader-label: %v", container.Args)
	}
	key, value, _ := strings.Cut(label, "=")
	selector := m.Service.Spec.Selector
	if selector[key] != value {
		t.Fatalf("Service %s selects %v, which does not include the leader label %s", m.Service.Name, selector, label)
	}

	pods := []string{"nginx-deploy-a", "nginx-deploy-b", "nginx-deploy-c"}
	if err := n.CreatePods(ctx(t), m.Deployment.Spec.Template, pods...); err != nil {
		t.Fatal(err)
	}
	a := start(t, n, pods[0], args...)
	if _, err := sidecar.WaitUntilLeads(ctx(t), watch(t, a)); err != nil {
		t.Fatal(err)
	}
	b, c := start(t, n, pods[1], args...), start(t, n, pods[2], args...)
	agree(t, a.Name, a, b, c)
	selected(t, n, selector, a.Name)

	// Graceful: the label moves with the Lease.
	streams := map[*sidecar.Replica]<-chan sidecar.Leader{b: watch(t, b), c: watch(t, c)}
	sent := time.Now()
	if err := a.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	next, led := firstToLead(t, streams)
	moved := selected(t, n, selector, next.Name)
	t.Logf("SIGTERM: %s leads %s after SIGTERM to %s; the Service selects only it %s after", next.Name, ms(led.Seen.Sub(sent)), a.Name, ms(moved.Sub(sent)))
	if code := exitCode(t, a); code != 0 {
		t.Fatalf("%s exited with %d after SIGTERM, want 0\n%s", a.Name, code, a.Output())
	}
	noLabel(t, n, key, a.Name)

	// Killed: no release, no unlabel. The survivor waits out the lease,
	// then takes the label and removes the dead leader's.
	survivor := b
	if next == b {
		survivor = c
	}
	events := watch(t, survivor)
	killed := time.Now()
	if err := next.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	led, err = sidecar.WaitUntilLeads(ctx(t), events)
	if err != nil {
		t.Fatal(err)
	}
	moved = selected(t, n, selector, survivor.Name)
	t.Logf("SIGKILL: %s leads %s after %s was killed (lease %v); the Service selects only it %s after",
		survivor.Name, ms(led.Seen.Sub(killed)), next.Name, ttl, ms(moved.Sub(killed)))
	noLabel(t, n, key, next.Name)
}

// selected waits until the selector matches exactly the Pod want, and
// returns when it did.
func selected(t *testing.T, n *sidecar.Namespace, selector map[string]string, want string) time.Time {
	t.Helper()
	at, err := n.WaitForSelectedPods(ctx(t), selector, want)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func noLabel(t *testing.T, n *sidecar.Namespace, key, pod string) {
	t.Helper()
	p, err := n.Admin.CoreV1().Pods(n.Name).Get(ctx(t), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := p.Labels[key]; ok {
		t.Errorf("Pod %s still has the leader label %s=%s; labels %v", pod, key, v, p.Labels)
	}
}
