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

package ctrl

import (
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elector-dev/elector/test/chaos/faultproxy"
)

// minReconciles is how many reconciles a term must record before the
// test moves on, so that each term is seen working, not just starting.
const minReconciles = 5

// minProbeRounds is how many rounds of probe and webhook calls each
// replica must answer while both run.
const minProbeRounds = 25

// TestSIGTERMHandsOver: two wrapped replicas; the follower serves
// webhooks and probes from the start, takes over when the leader gets
// SIGTERM, and the record shows one term after the other with a higher
// token.
func TestSIGTERMHandsOver(t *testing.T) {
	e := setup(t)
	a := e.start(t, "a", "")
	e.waitRecords(t, "a", minReconciles)
	b := e.start(t, "b", "")
	b.waitReady(t)
	a.waitReady(t)
	// AddHealthChecks put elector's checks on the manager's probes.
	for _, path := range []string{"/healthz?verbose", "/readyz?verbose"} {
		if body, err := b.body(ctx(t), path); err != nil || !strings.Contains(body, "[+]elector ok") {
			t.Errorf("b %s = %q, %v; want [+]elector ok", path, body, err)
		}
	}
	pa, pb := probe(a), probe(b)
	for pa.roundsDone() < minProbeRounds || pb.roundsDone() < minProbeRounds {
		time.Sleep(pollEvery)
	}
	if n := len(of(e.records(t), "b")); n != 0 {
		t.Fatalf("the follower reconciled %d times while the leader ran", n)
	}
	pa.stop(t)

	sent := time.Now()
	if err := a.p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	e.waitRecords(t, "b", minReconciles)
	if code := a.exitCode(t); code != 0 {
		t.Errorf("a exited with %d after SIGTERM, want 0", code)
	}
	rounds := pb.stop(t)

	rs := e.records(t)
	gaps := checkSequence(t, rs, "a", "b")
	ta, tb := of(rs, "a"), of(rs, "b")
	checkTokens(t, ta, tb)
	t.Logf("handoff: %s from a's last reconcile to b's first, %s from SIGTERM to b's first reconcile; %d probe rounds on b, none failed",
		ms(gaps[0]), ms(tb[0].start.Sub(sent)), rounds)
	if err := b.p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := b.exitCode(t); code != 0 {
		t.Errorf("b exited with %d after SIGTERM, want 0", code)
	}
}

// checkTokens checks that every term has one token, and that the later
// term's is higher.
func checkTokens(t *testing.T, terms ...[]rec) {
	t.Helper()
	last := int64(-1)
	for _, rs := range terms {
		for _, r := range rs {
			if r.token != rs[0].token {
				t.Errorf("%s: token %d then %d within one term", r.id, rs[0].token, r.token)
			}
		}
		if rs[0].token <= last {
			t.Errorf("%s: token %d, not above the previous term's %d", rs[0].id, rs[0].token, last)
		}
		last = rs[0].token
	}
}

// TestPartitionedLeaderStopsFirst: the leader loses the API server (a
// blackhole between them); its reconciles stop before the follower's
// start, and its Start returns ErrLeadershipLost (exit code 3).
func TestPartitionedLeaderStopsFirst(t *testing.T) {
	e := setup(t)
	p, err := faultproxy.New(strings.TrimPrefix(cp.URL(), "https://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	a := e.start(t, "a", e.viaProxy(t, p.Addr()))
	e.waitRecords(t, "a", minReconciles)
	b := e.start(t, "b", "")
	b.waitReady(t)
	pb := probe(b)

	cut := time.Now()
	p.Blackhole()
	e.waitRecords(t, "b", minReconciles)
	p.Heal()
	if code := a.exitCode(t); code != exitLost {
		t.Errorf("partitioned leader exited with %d, want %d (lost the Lease)", code, exitLost)
	}
	if !strings.Contains(a.p.Output(), "leadership lost") {
		t.Errorf("a's output does not say leadership lost:\n%s", a.p.Output())
	}
	pb.stop(t)

	rs := e.records(t)
	gaps := checkSequence(t, rs, "a", "b")
	ta, tb := of(rs, "a"), of(rs, "b")
	checkTokens(t, ta, tb)
	t.Logf("partition: a's reconciles stopped %s after the cut, b's began %s after the cut (%s after a's last)",
		ms(ta[len(ta)-1].end.Sub(cut)), ms(tb[0].start.Sub(cut)), ms(gaps[0]))
}

// TestMixedPairSharesTheLease: a Deployment rolling from plain
// controller-runtime to the wrapper and back: plain → wrapped → plain,
// one SIGTERM at a time, on one Lease.
func TestMixedPairSharesTheLease(t *testing.T) {
	e := setup(t)
	p1 := e.start(t, "plain-1", "", "--plain")
	e.waitRecords(t, "plain-1", minReconciles)
	w := e.start(t, "wrapped", "")
	w.waitReady(t)

	if err := p1.p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	e.waitRecords(t, "wrapped", minReconciles)
	if code := p1.exitCode(t); code != 0 {
		t.Errorf("plain-1 exited with %d after SIGTERM, want 0", code)
	}
	p2 := e.start(t, "plain-2", "", "--plain")
	p2.waitReady(t)
	if err := w.p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	e.waitRecords(t, "plain-2", minReconciles)
	if code := w.exitCode(t); code != 0 {
		t.Errorf("wrapped exited with %d after SIGTERM, want 0", code)
	}

	rs := e.records(t)
	gaps := checkSequence(t, rs, "plain-1", "wrapped", "plain-2")
	tw := of(rs, "wrapped")
	// plain-1 created the Lease (leaseTransitions 0); the wrapped
	// replica's term is the first change of holder.
	if tw[0].token < 1 {
		t.Errorf("wrapped replica's token = %d, want at least 1 (after plain-1's term)", tw[0].token)
	}
	checkTokens(t, tw)
	l, err := e.admin.CoordinationV1().Leases(e.ns.Name).Get(ctx(t), lease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := *l.Spec.LeaseTransitions; int64(got) <= tw[0].token {
		t.Errorf("leaseTransitions = %d after plain-2 took over, want above the wrapped term's %d", got, tw[0].token)
	}
	if h := *l.Spec.HolderIdentity; !strings.Contains(h, "_") {
		t.Errorf("holder = %q, want plain-2's controller-runtime identity (host_uuid)", h)
	}
	t.Logf("handoffs: plain → wrapped %s, wrapped → plain %s (plain controller-runtime polls every RetryPeriod)", ms(gaps[0]), ms(gaps[1]))
	_ = p2.p.Signal(syscall.SIGTERM)
	if code := p2.exitCode(t); code != 0 {
		t.Errorf("plain-2 exited with %d after SIGTERM, want 0", code)
	}
}
