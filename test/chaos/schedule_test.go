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
	"testing"
	"time"

	"github.com/elector-dev/elector/test/chaos/harness"
	"github.com/elector-dev/elector/test/chaos/skewclock"
)

func TestLibrarySchedules(t *testing.T) {
	tm := harness.DefaultTiming
	for _, seed := range []uint64{1, 2} {
		s := harness.Generate(seed, harness.LibraryKinds, 4, 3, tm.Lease, tm.Lease-tm.Renew, skewclock.Bound(tm.Lease, tm.Renew))
		e := newEnv(t)
		c, err := harness.NewLibraryCluster(e, 3, tm, s)
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, c.Run(t.Context(), s))
	}
}

func TestSidecarSchedule(t *testing.T) {
	s := harness.Generate(3, harness.SidecarKinds, 4, 3, harness.SidecarTTL, harness.SidecarMargin, 0)
	e := newEnv(t)
	c, err := harness.NewSidecarCluster(e, bins, 3, harness.ReplicaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, c.Run(t.Context(), s))
}

// TestDenialsAndThrottling runs the faults of a real cluster's life that
// used to end elections: the RoleBinding deleted and created again (every
// request denied meanwhile, as by a kube-apiserver whose caches are
// empty), and 429 storms on the leader. No Run may end with a 403, no
// sidecar may exit, and a leader must follow each heal.
func TestDenialsAndThrottling(t *testing.T) {
	t.Parallel() // no fault on the shared control plane: see main_test.go
	tm := harness.DefaultTiming
	lib := harness.Schedule{Seed: 1, Rates: []float64{1, 1, 1}, Offsets: make([]time.Duration, 3), Episodes: []harness.Episode{
		{Faults: []harness.Fault{{Kind: harness.RevokeRole, Target: harness.All}}, Hold: 2 * tm.Lease},
		{Faults: []harness.Fault{{Kind: harness.Throttle, Target: harness.Leader}}, Hold: tm.Lease},
		{Faults: []harness.Fault{{Kind: harness.RevokeRole, Target: harness.All}}, Hold: tm.Renew / 2},
	}}
	t.Run("library", func(t *testing.T) {
		e := newEnv(t)
		c, err := harness.NewLibraryCluster(e, 3, tm, lib)
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, c.Run(t.Context(), lib))
	})
	t.Run("sidecar", func(t *testing.T) {
		s := harness.Schedule{Seed: 2, Episodes: []harness.Episode{
			{Faults: []harness.Fault{{Kind: harness.RevokeRole, Target: harness.All}}, Hold: 2 * harness.SidecarTTL},
		}}
		e := newEnv(t)
		c, err := harness.NewSidecarCluster(e, bins, 3, harness.ReplicaOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res := c.Run(t.Context(), s)
		checkResult(t, res)
		// Exit 0 is the end of the test; exit 6 is the leader's, by
		// design in exec mode (its command was stopped: a restart gives it
		// a clean start). A lost permission itself must not end anyone.
		for code, n := range res.Exits {
			if code != harness.ExitLost && code != 0 {
				t.Errorf("%d sidecar exits with %d: a permission lost at runtime must not end the sidecar", n, code)
			}
		}
	})
}
