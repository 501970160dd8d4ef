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
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/fake"
)

// masterStatus reads leader_election_master_status{name=testLease} from
// controller-runtime's registry, which serves the manager's /metrics.
func masterStatus(t *testing.T) (float64, bool) {
	t.Helper()
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatalf("unable to gather controller-runtime's registry: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "leader_election_master_status" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "name" && l.GetValue() == testLease {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// TestMasterStatusInControllerRuntimeRegistry: a controller-runtime user
// who switches to NewManager keeps leader_election_master_status{name} on
// the manager's /metrics: controller-runtime registers that gauge in its
// init, and the elector sets the same gauge (it would fail to register
// one of another description, and the series would be missing).
func TestMasterStatusInControllerRuntimeRegistry(t *testing.T) {
	leases := fake.NewLeases()
	holdLease(t, leases, "other")
	mgr, err := NewManager(unreachable, testOptions(), WithConfig(func(c *elector.Config) {
		c.Leases = leases.Leases(testNS)
		c.Identity = testID
		c.Clock = clocktesting.NewFakeClock(time.Now())
	}))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := masterStatus(t); !ok || v != 0 {
		t.Fatalf("leader_election_master_status{name=%q} = %v (present %v) as a follower, want 0", testLease, v, ok)
	}
	cancel, done := startManager(t, mgr)
	releaseLease(t, leases)
	select {
	case <-mgr.Elected():
	case <-time.After(30 * time.Second):
		t.Fatal("not elected within 30s of the Lease's release")
	}
	if v, _ := masterStatus(t); v != 1 {
		t.Errorf("leader_election_master_status{name=%q} = %v while leading, want 1", testLease, v)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v, _ := masterStatus(t); v != 0 {
		t.Errorf("leader_election_master_status{name=%q} = %v after shutdown, want 0", testLease, v)
	}
}
