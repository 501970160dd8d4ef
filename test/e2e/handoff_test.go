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
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// TestExecModePlannedHandoff hands leadership round three replicas in
// exec mode with planned-handoff requests (to a named replica, and to
// anyone else), as kubectl elector handoff writes them. Each time the
// leader must stop its command before the target starts its own, with a
// higher $ELECTOR_TOKEN, and every replica stays up as a candidate. The
// commands hold an exclusive flock on one file: two commands at once is a
// violation the kernel reports.
func TestExecModePlannedHandoff(t *testing.T) {
	t.Parallel() // own namespace, processes and files: see main_test.go
	m := render(t, "base")
	lease := election(t, m)
	n := setup(t, m)
	self, env, lockLog := lockHolderCommand(t)
	args := append(baseArgs(t, m), "--", self)
	var replicas []*sidecar.Replica
	for _, pod := range []string{"replica-0", "replica-1", "replica-2"} {
		r, err := sidecar.Start(sidecar.Options{
			Binary: electorBin, Kubeconfig: n.Kubeconfig, PodName: pod, PodNamespace: n.Name,
			Args: args, Env: env, Log: t.Output(),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			r.Kill()
			if strings.Contains(r.Output(), "WARNING: DATA RACE") {
				t.Errorf("%s: the race detector found a data race in elector; see its output above", pod)
			}
		})
		replicas = append(replicas, r)
	}
	streams := map[*sidecar.Replica]<-chan sidecar.Leader{}
	for _, r := range replicas {
		streams[r] = watch(t, r)
	}
	leader, led := firstToLead(t, streams)
	commandStarted(t, lockLog, led.Token)
	agree(t, leader.Name, replicas...)
	leases := admin(t).CoordinationV1().Leases(n.Name)

	for i, named := range []bool{true, true, false, true} {
		var target *sidecar.Replica
		to := ""
		if named {
			for _, r := range replicas {
				if r != leader {
					target = r
					break
				}
			}
			to = target.Name
		}
		streams := map[*sidecar.Replica]<-chan sidecar.Leader{}
		for _, r := range replicas {
			if r != leader {
				streams[r] = watch(t, r)
			}
		}
		sent := time.Now()
		if _, err := elector.RequestHandoff(ctx(t), leases, lease, to); err != nil {
			t.Fatalf("handoff %d: RequestHandoff(%q): %v", i, to, err)
		}
		next, now := firstToLead(t, streams)
		if target != nil && next != target {
			t.Fatalf("handoff %d: %s leads, want %s", i, next.Name, target.Name)
		}
		if now.Token != led.Token+1 {
			t.Fatalf("handoff %d: token %d after %d, want %d", i, now.Token, led.Token, led.Token+1)
		}
		started := commandStarted(t, lockLog, now.Token)
		t.Logf("handoff %d (to %q): %s -> %s (token %d) %s after the request; its command started %s after the request",
			i, to, leader.Name, next.Name, now.Token, ms(now.Seen.Sub(sent)), ms(started.Sub(sent)))
		agree(t, next.Name, replicas...) // the old leader is up and follows
		leader, led = next, now
	}

	for _, r := range replicas {
		if v := metric(t, r, "elector_handoffs_total", lease); v == "" {
			t.Fatalf("%s: no elector_handoffs_total", r.Name)
		}
	}
	// Each handoff left a HandedOff Event on the Lease (written in the
	// background: wait for them).
	for c := ctx(t); ; time.Sleep(50 * time.Millisecond) {
		evs, err := admin(t).CoreV1().Events(n.Name).List(c, metav1.ListOptions{FieldSelector: "reason=HandedOff"})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs.Items) == 4 {
			for _, ev := range evs.Items {
				if ev.InvolvedObject.Kind != "Lease" || ev.InvolvedObject.Name != lease ||
					!strings.Contains(ev.Message, " handed off to ") && !strings.Contains(ev.Message, " released the lease to anyone else ") {
					t.Fatalf("HandedOff Event = %s %s: %q", ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Message)
				}
			}
			break
		}
		if c.Err() != nil {
			t.Fatalf("%d HandedOff Events, want 4", len(evs.Items))
		}
	}
	data, err := os.ReadFile(lockLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("commands:\n%s", data)
	var starts []int
	running := 0
	for _, l := range parseLockLog(t, data) {
		switch l.what {
		case "start":
			starts = append(starts, l.token)
			running++
			if running > 1 {
				t.Errorf("command %d started before the previous one stopped", l.token)
			}
		case "stop":
			running--
		default:
			t.Errorf("two commands ran at once: %s", l.line)
		}
	}
	if len(starts) != 5 {
		t.Fatalf("%d commands started, want 5 (one per tenure): %v", len(starts), starts)
	}
	for i := 1; i < len(starts); i++ {
		if starts[i] <= starts[i-1] {
			t.Errorf("ELECTOR_TOKEN %d after %d: tokens must increase", starts[i], starts[i-1])
		}
	}
}
