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

package elector_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/elector-dev/elector"
)

// gathered returns the value of the series name whose labels include
// want, and whether there is one.
func gathered(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("unable to gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			return value(m), true
		}
	}
	return 0, false
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

var electionLabels = map[string]string{"lease_namespace": ns, "lease": lease}

func mustGather(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	v, ok := gathered(t, g, name, want)
	if !ok {
		t.Fatalf("no series %s%v", name, want)
	}
	return v
}

// TestMetricsFromEveryReplica: the leader and a follower each export
// is_leader, the standard leader_election_master_status and the
// follower-side series (a leader is known, until when), labelled
// lease_namespace and lease and never namespace.
func TestMetricsFromEveryReplica(t *testing.T) {
	w := newWorld(t)
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	a := w.start("a", func(c *elector.Config) { c.Registerer = regA })
	wait(t, a.started, "a to lead")
	b := w.start("b", func(c *elector.Config) { c.Registerer = regB })
	follows(t, b, "a")

	for _, c := range []struct {
		reg    *prometheus.Registry
		leader float64
	}{{regA, 1}, {regB, 0}} {
		if v := mustGather(t, c.reg, "elector_is_leader", electionLabels); v != c.leader {
			t.Errorf("elector_is_leader = %v, want %v", v, c.leader)
		}
		if v := mustGather(t, c.reg, "leader_election_master_status", map[string]string{"name": lease}); v != c.leader {
			t.Errorf("leader_election_master_status = %v, want %v", v, c.leader)
		}
		if v := mustGather(t, c.reg, "elector_leader_known", electionLabels); v != 1 {
			t.Errorf("elector_leader_known = %v, want 1", v)
		}
		if v := mustGather(t, c.reg, "elector_handoff_pending", electionLabels); v != 0 {
			t.Errorf("elector_handoff_pending = %v, want 0", v)
		}
		now := float64(w.clock.Now().UnixNano()) / 1e9
		if v := mustGather(t, c.reg, "elector_lease_expiry_timestamp_seconds", electionLabels); v <= now || v > now+elector.DefaultLeaseDuration.Seconds() {
			t.Errorf("elector_lease_expiry_timestamp_seconds = %v, want within the lease duration after now (%v)", v, now)
		}
		mfs, err := c.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "namespace" {
						t.Errorf("%s has a label namespace, which Prometheus Operator renames exported_namespace", mf.GetName())
					}
				}
			}
		}
	}
}

// TestLeaderKnownEndsWithTheObservedLease: a holder that stops renewing
// is known until its lease expires on the follower's clock, then not;
// the expiry timestamp stays where it was.
func TestLeaderKnownEndsWithTheObservedLease(t *testing.T) {
	w := newWorld(t)
	if _, err := w.leases.Leases(ns).Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: lease, Namespace: ns},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To("ghost"), LeaseDurationSeconds: ptr.To[int32](15),
			AcquireTime: &metav1.MicroTime{Time: epoch}, RenewTime: &metav1.MicroTime{Time: epoch},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// b cannot take the Lease over: it stays a follower of ghost.
	w.setFail("b", apierrors.NewConflict(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, lease, errors.New("test")))
	reg := prometheus.NewRegistry()
	b := w.start("b", func(c *elector.Config) { c.Registerer = reg })
	follows(t, b, "ghost")
	if v := mustGather(t, reg, "elector_leader_known", electionLabels); v != 1 {
		t.Fatalf("elector_leader_known = %v while ghost's lease runs, want 1", v)
	}
	expiry := mustGather(t, reg, "elector_lease_expiry_timestamp_seconds", electionLabels)
	if want := float64(w.clock.Now().Add(15*time.Second).UnixNano()) / 1e9; expiry != want {
		t.Fatalf("elector_lease_expiry_timestamp_seconds = %v, want %v (first sight + 15s)", expiry, want)
	}
	w.clock.Step(16 * time.Second)
	if v := mustGather(t, reg, "elector_leader_known", electionLabels); v != 0 {
		t.Errorf("elector_leader_known = %v after ghost's lease expired, want 0", v)
	}
	if v := mustGather(t, reg, "elector_lease_expiry_timestamp_seconds", electionLabels); v != expiry {
		t.Errorf("elector_lease_expiry_timestamp_seconds = %v after expiry, want it unchanged (%v)", v, expiry)
	}
}

// crMasterStatusHelp is controller-runtime's help text of
// leader_election_master_status (sigs.k8s.io/controller-runtime
// pkg/metrics/leaderelection.go); ctrl's tests check it against the real
// package.
const crMasterStatusHelp = "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease. Please make sure to group by name."

// TestMasterStatusSharedWithControllerRuntime: a Registerer that holds
// controller-runtime's gauge gets that gauge set, instead of an error.
func TestMasterStatusSharedWithControllerRuntime(t *testing.T) {
	w := newWorld(t)
	reg := prometheus.NewRegistry()
	theirs := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "leader_election_master_status", Help: crMasterStatusHelp}, []string{"name"})
	reg.MustRegister(theirs)
	a := w.start("a", func(c *elector.Config) { c.Registerer = reg })
	wait(t, a.started, "a to lead")
	if v := mustGather(t, reg, "leader_election_master_status", map[string]string{"name": lease}); v != 1 {
		t.Errorf("leader_election_master_status = %v while leading, want 1", v)
	}
}

// TestMasterStatusOfAnotherDescriptionIsSkipped: a Registerer holding a
// leader_election_master_status of another description does not stop the
// election nor its other series.
func TestMasterStatusOfAnotherDescriptionIsSkipped(t *testing.T) {
	w := newWorld(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "leader_election_master_status", Help: "other"}, []string{"name"}))
	a := w.start("a", func(c *elector.Config) { c.Registerer = reg })
	wait(t, a.started, "a to lead")
	if v := mustGather(t, reg, "elector_is_leader", electionLabels); v != 1 {
		t.Errorf("elector_is_leader = %v while leading, want 1", v)
	}
}

// TestExpiredTakeoversCountOnlyUnplannedChanges: taking over a Lease
// whose holder stopped renewing counts; taking a released one does not.
func TestExpiredTakeoversCountOnlyUnplannedChanges(t *testing.T) {
	w := newWorld(t)
	if _, err := w.leases.Leases(ns).Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: lease, Namespace: ns},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To("ghost"), LeaseDurationSeconds: ptr.To[int32](15),
			AcquireTime: &metav1.MicroTime{Time: epoch}, RenewTime: &metav1.MicroTime{Time: epoch},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	a := w.start("a", func(c *elector.Config) { c.Registerer = regA })
	follows(t, a, "ghost")
	w.clock.Step(16 * time.Second)
	wait(t, a.started, "a to take over ghost's expired lease")
	if v := mustGather(t, regA, "elector_expired_takeovers_total", electionLabels); v != 1 {
		t.Errorf("a: elector_expired_takeovers_total = %v after taking over an expired lease, want 1", v)
	}
	b := w.start("b", func(c *elector.Config) { c.Registerer = regB })
	follows(t, b, "a")
	a.cancel() // releases
	wait(t, b.started, "b to take the released lease")
	if v := mustGather(t, regB, "elector_expired_takeovers_total", electionLabels); v != 0 {
		t.Errorf("b: elector_expired_takeovers_total = %v after taking a released lease, want 0", v)
	}
}
