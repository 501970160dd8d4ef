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

package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/test/chaos/harness"
	"github.com/elector-dev/elector/test/chaos/history"
	"github.com/elector-dev/elector/test/controlplane"
)

// haGuard bounds each wait of TestHARollingRestart. It is a deadline
// against a wedged test, not an expectation: the times are logged.
const haGuard = time.Minute

// haDown is how long each kube-apiserver member stays stopped.
const haDown = 2 * time.Second

// haPoll is the pace at which the Leases are read to see their renewals:
// well under the renew period of either election (2s for the library,
// 2×10s/15 for the sidecar).
const haPoll = 200 * time.Millisecond

// TestHARollingRestart is an upgrade of the control plane under running
// elections: on an HA control plane (three kube-apiservers behind a load
// balancer, on three etcd members), it restarts every kube-apiserver and
// then every etcd member, one at a time, while three sidecar replicas and
// three library candidates, each on default timings and each through the
// load balancer as a ServiceAccount, hold their elections (one Lease
// each). One member down at a time never takes the API away, so nothing
// may notice more than a failed request: no replica exits, no Run
// returns, no tenure overlaps another, and each leader keeps its tenure
// (same holder, same leaseTransitions) through the roll. Then each leader
// is stopped, and a follower must take over: their watches survived the
// roll.
func TestHARollingRestart(t *testing.T) {
	t.Parallel() // no fault on the shared control plane: see main_test.go
	ctx := t.Context()
	begin := time.Now()
	ha, err := controlplane.Start(ctx, controlplane.Options{HA: true})
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so that it runs after the elections' cleanups.
	t.Cleanup(func() {
		if err := ha.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("HA control plane (%d kube-apiservers, %d etcd members) ready in %s",
		ha.Members(), ha.EtcdMembers(), time.Since(begin).Round(time.Millisecond))

	side := newEnvOn(t, ha, "ha-sidecar")
	lib := newEnvOn(t, ha, "ha-library")

	// Three sidecar replicas on the sidecar's default timings (no --ttl).
	sc, err := harness.NewSidecarCluster(side, bins, 3, harness.ReplicaOptions{DefaultTTL: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Stop() })
	// Three library candidates on the library's default timings, with
	// true clocks.
	timing := harness.Timing{Lease: elector.DefaultLeaseDuration, Renew: elector.DefaultRenewDeadline, Retry: elector.DefaultRetryPeriod}
	lc := &harness.Cluster{Env: lib, Lease: timing.Lease, Margin: timing.Lease - timing.Renew}
	t.Cleanup(func() { lc.Stop() })
	for i := range 3 {
		c, err := lib.StartLib(fmt.Sprintf("lib-%d", i), timing, 1, 0, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		lc.Lib = append(lc.Lib, c)
	}

	// Every replica has reached the API server (it logs this after its
	// first request) and a leader of each election has acted for a while,
	// by which time the followers watch the Lease.
	for _, r := range sc.Reps {
		waitFor(t, r.ID+" to start", func() bool {
			return strings.Contains(readFile(filepath.Join(side.Dir, r.ID+".log")), "Skipping permission check")
		})
	}
	elections := []*haElection{
		{name: "sidecar", env: side, cluster: sc},
		{name: "library", env: lib, cluster: lc},
	}
	unlimited := ha.AdminConfig()
	unlimited.QPS = -1 // the polls below are not the client's to throttle
	admin, err := kubernetes.NewForConfig(unlimited)
	if err != nil {
		t.Fatal(err)
	}
	for _, el := range elections {
		if el.leader, err = el.cluster.WaitLeader(ctx, 2*time.Second, haGuard); err != nil {
			t.Fatalf("%s: %v", el.name, err)
		}
		if el.holder, el.transitions, err = readLease(ctx, admin, el.env); err != nil {
			t.Fatalf("%s: %v", el.name, err)
		}
		if el.holder != el.leader {
			t.Fatalf("%s: the Lease is held by %q, the record says %q acts", el.name, el.holder, el.leader)
		}
		t.Logf("%s election: %s leads, leaseTransitions %d", el.name, el.holder, el.transitions)
	}

	var phase haPhase
	phase.set("before the roll")
	for _, el := range elections {
		el.renewals = watchRenewals(ctx, admin, el.env, &phase)
	}
	t.Cleanup(func() {
		for _, el := range elections {
			el.renewals.stop()
		}
	})
	// A first renewal seen, so that the longest gap is measured from a
	// renewal and not from the start of the polls.
	for _, el := range elections {
		el.renewals.waitRenewedAfter(t, el.name, time.Now())
	}

	// The roll: each kube-apiserver, then each etcd member, one at a time.
	fault := func(what string) {
		phase.set(what)
		for _, el := range elections {
			el.env.Rec.Fault("*", what)
		}
	}
	heal := func(what string) {
		phase.set("after " + what)
		for _, el := range elections {
			el.env.Rec.Heal(what)
		}
	}
	rollBegin := time.Now()
	for i := range ha.Members() {
		fault(fmt.Sprintf("kube-apiserver member %d stopped", i))
		t0 := time.Now()
		ha.StopAPIServerMember(i)
		stopped := time.Since(t0)
		time.Sleep(haDown)
		t1 := time.Now()
		if err := ha.StartAPIServerMember(ctx, i); err != nil {
			t.Fatal(err)
		}
		heal(fmt.Sprintf("kube-apiserver member %d restarted", i))
		t.Logf("kube-apiserver member %d: stopped in %s, down %s, ready and in rotation %s after its start; in rotation: %v",
			i, stopped.Round(time.Millisecond), haDown, time.Since(t1).Round(time.Millisecond), ha.InRotation())
	}
	for i := range ha.EtcdMembers() {
		fault(fmt.Sprintf("etcd member %d stopped", i))
		t0 := time.Now()
		ha.StopEtcdMember(i)
		stopped := time.Since(t0)
		t1 := time.Now()
		if err := ha.StartEtcdMember(ctx, i); err != nil {
			t.Fatal(err)
		}
		heal(fmt.Sprintf("etcd member %d restarted", i))
		t.Logf("etcd member %d: stopped in %s, healthy %s after its start",
			i, stopped.Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	}
	roll := time.Since(rollBegin)
	phase.set("after the roll")
	t.Logf("rolling restart of %d kube-apiservers and %d etcd members took %s",
		ha.Members(), ha.EtcdMembers(), roll.Round(time.Millisecond))

	// Each leader renews once more after the roll: the tenure is checked
	// on a control plane that is whole again.
	rollEnd := time.Now()
	for _, el := range elections {
		el.renewals.waitRenewedAfter(t, el.name, rollEnd)
		el.renewals.stop()
	}

	// Nobody noticed more than failed requests.
	for _, r := range sc.Reps {
		if exits := r.Exits(); len(exits) > 0 {
			t.Errorf("sidecar replica %s exited during the roll, with codes %v", r.ID, exits)
		}
	}
	for _, c := range lc.Lib {
		if n := c.Runs(); n > 0 {
			t.Errorf("library candidate %s: Run returned %d times during the roll", c.ID, n)
		}
	}
	for _, el := range elections {
		holder, transitions, err := readLease(ctx, admin, el.env)
		if err != nil {
			t.Fatalf("%s: %v", el.name, err)
		}
		if holder != el.holder || transitions != el.transitions {
			t.Errorf("%s election: the Lease is held by %s with leaseTransitions %d after the roll; before: %s, %d",
				el.name, holder, transitions, el.holder, el.transitions)
		}
		rep := readReport(t, el.env)
		if len(rep.Intervals) != 1 || rep.Intervals[0].Who != el.holder {
			t.Errorf("%s election: tenures %v during the roll, want one of %s", el.name, rep.Intervals, el.holder)
		}
		if len(rep.Takeovers) > 0 {
			t.Errorf("%s election: the roll deposed a leader: %v", el.name, rep.Takeovers)
		}
		r := el.renewals.result()
		period, deadline := el.timing(timing)
		t.Logf("%s election: %s leads with leaseTransitions %d after the roll (before: %s, %d); "+
			"%d renewals seen, longest gap between two %s (%s), renew period %s, renew deadline %s; "+
			"leader's failed renewals logged: %d; reads of the Lease: %d failed, longest without one %s",
			el.name, holder, transitions, el.holder, el.transitions,
			r.renewals, r.longest.Round(time.Millisecond), r.longestIn, period.Round(time.Millisecond), deadline,
			el.failedRenewals(), r.failures, r.blind.Round(time.Millisecond))
	}

	// The followers still watch the Lease: stopping the leader (it
	// releases the Lease) hands over to one of them at once, not after a
	// lease duration as it would if their watches had died with a member.
	for _, el := range elections {
		stopping := history.Now()
		el.env.Rec.Note(el.holder, "stopping the leader")
		el.stopLeader()
		next, err := el.cluster.WaitLeaderIs(ctx, "", 0, haGuard)
		if err != nil {
			t.Fatalf("%s election: after stopping the leader %s: %v", el.name, el.holder, err)
		}
		if next == el.holder {
			t.Fatalf("%s election: %s still leads after it was stopped", el.name, next)
		}
		rep := readReport(t, el.env)
		if len(rep.Intervals) < 2 {
			t.Fatalf("%s election: tenures %v after the handoff, want two", el.name, rep.Intervals)
		}
		first, second := rep.Intervals[0], rep.Intervals[1]
		t.Logf("%s election: %s took over %s after the stop of %s began, %s after its tenure ended",
			el.name, second.Who, time.Duration(second.Start-stopping).Round(time.Millisecond), first.Who,
			time.Duration(second.Start-first.End).Round(time.Millisecond))
	}

	// Stop the candidates and check the whole record of each election.
	for _, el := range elections {
		for _, p := range el.cluster.Stop() {
			t.Errorf("%s: %s", el.name, p)
		}
		rep := readReport(t, el.env)
		if !rep.Safe() {
			t.Errorf("%s election: tenures overlap:\n%s", el.name, rep.Problems())
		}
		t.Logf("%s election: %d tenures, %d overlaps, %d detector violations, %d faults recorded",
			el.name, len(rep.Intervals), len(rep.Overlaps), len(rep.Violations), rep.Faults)
	}
	t.Logf("test took %s", time.Since(begin).Round(time.Millisecond))
}

// haElection is one of the two elections of TestHARollingRestart.
type haElection struct {
	name    string
	env     *harness.Env
	cluster *harness.Cluster

	leader, holder string // before the roll
	transitions    int32
	renewals       *renewalWatch
}

// stopLeader stops the candidate that led before the roll, as a rolling
// update of the candidates would: the leader releases the Lease.
func (el *haElection) stopLeader() {
	for _, r := range el.cluster.Reps {
		if r.ID == el.holder {
			r.Stop()
		}
	}
	for _, c := range el.cluster.Lib {
		if c.ID == el.holder {
			c.Stop()
		}
	}
}

// timing is how often the leader renews when all goes well, and its
// renew deadline.
func (el *haElection) timing(lib harness.Timing) (period, deadline time.Duration) {
	if len(el.cluster.Reps) > 0 {
		// cmd/elector's defaults: ttl 10s, retry period 2×ttl/15, renew
		// deadline 3×ttl/5.
		return 2 * 10 * time.Second / 15, 3 * 10 * time.Second / 5
	}
	return lib.Retry, lib.Renew
}

// failedRenewals counts the renewals that the leader logged as failed.
func (el *haElection) failedRenewals() int {
	var log string
	if len(el.cluster.Reps) > 0 {
		log = readFile(filepath.Join(el.env.Dir, el.holder+".log"))
	} else {
		// The library candidates log to the Env's log, one line each,
		// tagged with their identity.
		for _, l := range strings.Split(readFile(filepath.Join(el.env.Dir, "harness.log")), "\n") {
			if strings.Contains(l, "candidate="+el.holder) {
				log += l + "\n"
			}
		}
	}
	return strings.Count(log, "Unable to renew lease")
}

// newEnvOn is newEnv on another control plane than the package's.
func newEnvOn(t *testing.T, cp *controlplane.ControlPlane, prefix string) *harness.Env {
	t.Helper()
	dir := t.TempDir()
	log, err := os.Create(filepath.Join(dir, "harness.log"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := harness.NewEnv(t.Context(), cp, dir, prefix, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if n := harness.KillStragglers(e); n > 0 {
			t.Errorf("%d processes outlived the test", n)
		}
		e.Close()
		log.Close()
		if t.Failed() {
			t.Logf("==== logs of %s", e.NS)
			dumpLogs(t, dir)
		}
	})
	return e
}

// readLease returns the holder and leaseTransitions of the Env's Lease.
func readLease(ctx context.Context, admin kubernetes.Interface, e *harness.Env) (string, int32, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	l, err := admin.CoordinationV1().Leases(e.NS).Get(ctx, e.Lease, metav1.GetOptions{})
	if err != nil {
		return "", 0, fmt.Errorf("unable to read the Lease: %w", err)
	}
	var holder string
	var transitions int32
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	if l.Spec.LeaseTransitions != nil {
		transitions = *l.Spec.LeaseTransitions
	}
	return holder, transitions, nil
}

// haPhase names the step of the roll under way.
type haPhase struct {
	mu   sync.Mutex
	name string
}

func (p *haPhase) set(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.name = name
}

func (p *haPhase) get() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.name
}

// renewalWatch reads a Lease through the load balancer every haPoll and
// records the gaps between the renewTimes its holder writes: the time
// between two successful renewals, on the leader's clock. A renewal is
// missed only if the reads fail for longer than the renew period; the
// longest time without a successful read says whether that happened.
type renewalWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	res       renewalResult
	last      time.Time // the last renewTime seen
	lastPhase string    // when it was seen
	lastRead  time.Time // of the last successful read
}

type renewalResult struct {
	renewals  int
	longest   time.Duration // between two renewTimes
	longestIn string        // the phases of the roll when they were seen
	failures  int           // failed reads
	blind     time.Duration // longest time between two successful reads
}

func watchRenewals(ctx context.Context, admin kubernetes.Interface, e *harness.Env, phase *haPhase) *renewalWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &renewalWatch{cancel: cancel, done: make(chan struct{}), lastRead: time.Now()}
	leases := admin.CoordinationV1().Leases(e.NS)
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			rctx, rcancel := context.WithTimeout(ctx, time.Second)
			l, err := leases.Get(rctx, e.Lease, metav1.GetOptions{})
			rcancel()
			now := time.Now()
			w.mu.Lock()
			switch {
			case ctx.Err() != nil:
			case err != nil:
				w.res.failures++
			default:
				w.res.blind = max(w.res.blind, now.Sub(w.lastRead))
				w.lastRead = now
				if rt := l.Spec.RenewTime; rt != nil && rt.After(w.last) {
					ph := phase.get()
					if !w.last.IsZero() {
						w.res.renewals++
						if gap := rt.Sub(w.last); gap > w.res.longest {
							w.res.longest, w.res.longestIn = gap, ph
							if w.lastPhase != ph {
								w.res.longestIn = w.lastPhase + " → " + ph
							}
						}
					}
					w.last, w.lastPhase = rt.Time, ph
				}
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(haPoll):
			}
		}
	}()
	return w
}

// waitRenewedAfter waits until a renewTime after t has been seen.
func (w *renewalWatch) waitRenewedAfter(t *testing.T, what string, after time.Time) {
	t.Helper()
	deadline := time.Now().Add(haGuard)
	for {
		w.mu.Lock()
		last := w.last
		w.mu.Unlock()
		if last.After(after) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no renewal of the Lease seen within %s (last renewTime %s)", what, haGuard, last.Format(time.StampMilli))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *renewalWatch) result() renewalResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.res
}

// stop ends the reads; it may be called more than once.
func (w *renewalWatch) stop() {
	w.cancel()
	<-w.done
}
