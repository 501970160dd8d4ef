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
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elector-dev/elector/internal/testwait"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// TestRoleDeletedAtRuntime deletes the Role of deploy/base while three
// sidecars (no command, --ttl=5s) campaign with it, then restores it:
//
//   - the leader stops leading (its /watch says isLeader false) within one
//     lease of the deletion, before any replica leads again, and nobody
//     leads while the Role is missing;
//   - no sidecar exits, and each keeps answering HTTP: /healthz, GET / and
//     /readyz stay 200 (readiness stays once the Lease was read);
//   - every replica's /leader names the denied permission in "error" and
//     carries the Role in "fix"; elector_permission_denied is 1; each
//     logs "Permission denied; retrying" once (rate-limited to once a
//     minute);
//   - once the Role is back, one replica leads again without any restart,
//     every replica agrees on it, and the errors and the metric clear.
func TestRoleDeletedAtRuntime(t *testing.T) {
	t.Parallel() // own namespace, processes and files: see main_test.go
	m := render(t, "base")
	lease := election(t, m)
	n := setup(t, m)
	rules := sidecar.Rules(m.Role)
	args := sidecar.LocalArgs([]string{"--election=" + lease, "--http=0.0.0.0:4444"}, "--ttl="+restartTTL.String())
	f := newFleet(t, "plain", n, args, nil, false, "replica-0", "replica-1", "replica-2")
	rs := f.replicas()

	events := map[*sidecar.Replica]*eventLog{}
	for _, r := range rs {
		events[r] = recordEvents(t, r)
	}
	kubelet := probeHTTP(t, rs)

	got, err := waitAgreement(ctx(t), []*fleet{f})
	if err != nil {
		t.Fatal(err)
	}
	kubelet.waitReady(t)
	var leader *sidecar.Replica
	for _, r := range rs {
		if r.Name == got[0].leader {
			leader = r
		}
	}
	oldToken := got[0].token
	t.Logf("%s leads (token %d); every replica is ready", leader.Name, oldToken)

	// Delete the Role.
	c := ctx(t)
	deleted := time.Now()
	if err := n.Admin.RbacV1().Roles(n.Name).Delete(c, m.Role.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitForAccess(c, nil, rules); err != nil {
		t.Fatal(err)
	}
	t.Logf("Role %s deleted; denied %s later", m.Role.Name, ms(time.Since(deleted)))

	// The leader stops within one lease.
	stopped, err := events[leader].waitFor(ctx(t), deleted, func(l sidecar.Leader) bool { return !l.IsLeader })
	if err != nil {
		t.Fatalf("%s still leads after the Role was deleted: %v\n%s", leader.Name, err, leader.Output())
	}
	stopTime := stopped.Seen.Sub(deleted)
	t.Logf("%s stopped leading %s after the deletion (stop point: 2s after its last renewal; lease %s)", leader.Name, ms(stopTime), restartTTL)
	if stopTime > restartTTL {
		t.Errorf("%s stopped leading %s after the Role was deleted, more than one lease (%s): another replica could have led meanwhile", leader.Name, ms(stopTime), restartTTL)
	}
	waitUntil(t, leader.Name+" logs why it stepped down", func() (bool, string) {
		return strings.Contains(leader.Output(), "no renewal succeeded within"), leader.Output()
	})

	// Every replica reports the denial, with the fix, and keeps running.
	for _, r := range rs {
		var l sidecar.Leader
		waitUntil(t, fmt.Sprintf("%s: /leader shows the denial", r.Name), func() (bool, string) {
			var err error
			l, err = r.Leader(ctx(t))
			if err != nil {
				return false, err.Error()
			}
			return l.Error != "" && l.Fix != "", fmt.Sprintf("%+v", l)
		})
		t.Logf("%s: /leader error %q %s after the deletion", r.Name, l.Error, ms(time.Since(deleted)))
		for _, want := range []string{
			"system:serviceaccount:" + n.Name + ":" + n.ServiceAccount + " may not ",
			`leases.coordination.k8s.io "` + lease + `"`,
			`in namespace "` + n.Name + `"`,
			"RBAC",
		} {
			if !strings.Contains(l.Error, want) {
				t.Errorf("%s: /leader error %q does not name %q", r.Name, l.Error, want)
			}
		}
		for _, want := range []string{"kind: Role\n", "kind: RoleBinding\n", "name: " + n.ServiceAccount} {
			if !strings.Contains(l.Fix, want) {
				t.Errorf("%s: /leader fix does not contain %q:\n%s", r.Name, want, l.Fix)
			}
		}
		if v := metric(t, r, "elector_permission_denied", lease); v != "1" {
			t.Errorf("%s: elector_permission_denied = %s while denied, want 1", r.Name, v)
		}
	}
	// Hold the denial a little longer than a lease past the leader's stop,
	// so that every follower has found the Lease expired and campaigned.
	time.Sleep(time.Until(stopped.Seen.Add(restartTTL + time.Second)))
	for _, r := range rs {
		waitUntil(t, r.Name+" logs the denial", func() (bool, string) {
			return strings.Contains(r.Output(), `msg="Permission denied; retrying"`), r.Output()
		})
		if k := strings.Count(r.Output(), `msg="Permission denied; retrying"`); k != 1 {
			t.Errorf("%s logged \"Permission denied; retrying\" %d times, want once (at most once a minute)", r.Name, k)
		}
		for _, e := range events[r].all() {
			if e.IsLeader && e.Seen.After(stopped.Seen) {
				t.Errorf("%s led at %s while the Role was deleted: %+v", r.Name, e.Seen.Format(time.RFC3339Nano), e)
			}
		}
	}
	checkRunning(t, f)

	// Restore the Role.
	c = ctx(t)
	role := m.Role.DeepCopy()
	role.Namespace = n.Name
	restored := time.Now()
	if _, err := n.Admin.RbacV1().Roles(n.Name).Create(c, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitForAccess(c, rules, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("Role restored; granted %s later", ms(time.Since(restored)))

	streams := map[*sidecar.Replica]<-chan sidecar.Leader{}
	for _, r := range rs {
		streams[r] = events[r].since(t.Context(), restored)
	}
	next, led := firstToLead(t, streams)
	t.Logf("%s leads again %s after the Role was restored", next.Name, ms(led.Seen.Sub(restored)))
	if !led.Seen.After(stopped.Seen) {
		t.Errorf("%s led at %s, before %s stopped at %s", next.Name, led.Seen.Format(time.RFC3339Nano), leader.Name, stopped.Seen.Format(time.RFC3339Nano))
	}
	again, err := waitAgreement(ctx(t), []*fleet{f})
	if err != nil {
		t.Fatal(err)
	}
	if again[0].leader != next.Name {
		t.Errorf("replicas agree on %s, but %s's /watch said it leads", again[0].leader, next.Name)
	}
	// (The first /watch event of a replica that leads again may carry its
	// previous token: see TestTokenGrowsWhenTheSameReplicaLeadsAgain.)
	if again[0].token <= oldToken {
		t.Errorf("token %d after the Role was restored, want above %d", again[0].token, oldToken)
	}
	t.Logf("every replica agrees on %s (token %d) %s after the Role was restored", again[0].leader, again[0].token, ms(again[0].at.Sub(restored)))

	for _, r := range rs {
		waitUntil(t, fmt.Sprintf("%s: /leader error clears", r.Name), func() (bool, string) {
			l, err := r.Leader(ctx(t))
			if err != nil {
				return false, err.Error()
			}
			return l.Error == "" && l.Fix == "", fmt.Sprintf("%+v", l)
		})
		if v := metric(t, r, "elector_permission_denied", lease); v != "0" {
			t.Errorf("%s: elector_permission_denied = %s after the Role was restored, want 0", r.Name, v)
		}
		waitUntil(t, r.Name+` logs "Permission restored"`, func() (bool, string) {
			return strings.Contains(r.Output(), `msg="Permission restored"`), r.Output()
		})
	}
	// The leader's work runs again: the gauge says so.
	waitUntil(t, next.Name+": elector_is_leader 1", func() (bool, string) {
		v := metric(t, next, "elector_is_leader", lease)
		return v == "1", v
	})
	checkRunning(t, f)
	kubelet.check(t)
}

// checkRunning fails the test if a replica of f exited.
func checkRunning(t *testing.T, f *fleet) {
	t.Helper()
	for _, e := range f.takeExits() {
		t.Fatalf("%s exited with %d; a sidecar without a command must not exit:\n%s", e.pod, e.code, e.output)
	}
}

// waitUntil polls cond until it holds, failing the test after guard with
// cond's last description.
func waitUntil(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for {
		ok, desc := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %s", what, guard, desc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventLog records a replica's /watch events until the test ends.
type eventLog struct {
	mu      sync.Mutex
	events  []sidecar.Leader
	changed chan struct{} // closed and replaced on each event
}

func recordEvents(t *testing.T, r *sidecar.Replica) *eventLog {
	t.Helper()
	c, cancel := context.WithCancel(context.Background())
	ch, err := r.Watch(c)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	e := &eventLog{changed: make(chan struct{})}
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); testwait.Call(t, "the event log to stop", wg.Wait) })
	wg.Go(func() {
		for l := range ch {
			e.mu.Lock()
			e.events = append(e.events, l)
			close(e.changed)
			e.changed = make(chan struct{})
			e.mu.Unlock()
		}
	})
	return e
}

func (e *eventLog) all() []sidecar.Leader {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]sidecar.Leader(nil), e.events...)
}

// waitFor returns the first event seen after since that satisfies ok.
func (e *eventLog) waitFor(ctx context.Context, since time.Time, ok func(sidecar.Leader) bool) (sidecar.Leader, error) {
	for {
		e.mu.Lock()
		for _, l := range e.events {
			if l.Seen.After(since) && ok(l) {
				e.mu.Unlock()
				return l, nil
			}
		}
		changed := e.changed
		e.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return sidecar.Leader{}, ctx.Err()
		}
	}
}

// since returns a channel with the events seen after since, for
// sidecar.FirstToLead; it is closed when ctx ends.
func (e *eventLog) since(ctx context.Context, since time.Time) <-chan sidecar.Leader {
	ch := make(chan sidecar.Leader)
	go func() {
		defer close(ch)
		sent := 0
		for {
			e.mu.Lock()
			var todo []sidecar.Leader
			for _, l := range e.events[sent:] {
				if l.Seen.After(since) {
					todo = append(todo, l)
				}
			}
			sent = len(e.events)
			changed := e.changed
			e.mu.Unlock()
			for _, l := range todo {
				select {
				case ch <- l:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// httpProber asks every replica for /healthz, /readyz and / every 250ms,
// as the kubelet's probes and a leader-elector:0.5 client would, and
// records every answer that is not 200 (on /readyz, only once it was 200:
// readiness stays once the Lease was read).
type httpProber struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	rs []*sidecar.Replica

	mu       sync.Mutex
	ready    map[string]bool
	failures []string
	probes   int
}

func probeHTTP(t *testing.T, rs []*sidecar.Replica) *httpProber {
	c, cancel := context.WithCancel(context.Background())
	p := &httpProber{cancel: cancel, rs: rs, ready: map[string]bool{}}
	t.Cleanup(func() { cancel(); testwait.Call(t, "the HTTP probes to stop", p.wg.Wait) })
	for _, r := range rs {
		p.wg.Go(func() {
			for c.Err() == nil {
				for _, path := range []string{"/healthz", "/readyz", "/"} {
					rctx, rcancel := context.WithTimeout(c, 5*time.Second)
					resp, err := r.Get(rctx, path)
					rcancel()
					if c.Err() != nil {
						return
					}
					p.mu.Lock()
					p.probes++
					switch {
					case err != nil:
						p.failures = append(p.failures, fmt.Sprintf("%s %s GET %s: %v", time.Now().Format(time.RFC3339Nano), r.Name, path, err))
					case path == "/readyz" && resp.Status == http.StatusOK:
						p.ready[r.Name] = true
					case path == "/readyz" && !p.ready[r.Name]:
						// not ready yet: the Lease has not been read
					case resp.Status != http.StatusOK:
						p.failures = append(p.failures, fmt.Sprintf("%s %s GET %s: %d %s", time.Now().Format(time.RFC3339Nano), r.Name, path, resp.Status, resp.Body))
					}
					p.mu.Unlock()
				}
				select {
				case <-c.Done():
				case <-time.After(250 * time.Millisecond):
				}
			}
		})
	}
	return p
}

// waitReady waits until every replica has answered /readyz with 200.
func (p *httpProber) waitReady(t *testing.T) {
	t.Helper()
	waitUntil(t, "every replica ready", func() (bool, string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.ready) == len(p.rs), fmt.Sprintf("ready: %v", p.ready)
	})
}

// check fails the test for every failed probe so far.
func (p *httpProber) check(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.failures {
		t.Errorf("HTTP probe failed: %s", f)
	}
	t.Logf("%d HTTP probes, %d failed", p.probes, len(p.failures))
}
