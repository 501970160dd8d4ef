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
	"errors"
	"fmt"
	"net/http"

	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// CheckName is the name of the checks AddHealthChecks adds, as it appears
// in /healthz and /readyz ("[+]elector ok").
const CheckName = "elector"

// ShardsCheckName is the name of the checks AddHealthChecks adds for the
// shard group of a ShardedManager.
const ShardsCheckName = "elector-shards"

// errNotSynced is the readiness check's failure before the Lease was read.
var errNotSynced = errors.New("elector: the Lease has not been read yet")

// errShardsNotSynced is the readiness check's failure before the group's
// Leases were read.
var errShardsNotSynced = errors.New("elector: the shard group's Leases have not been read yet")

// AddHealthChecks adds elector's checks to the manager's probes, for a
// manager from NewManager:
//
//   - liveness (AddHealthzCheck): elector.Elector.Check, which fails while
//     leader-only runnables run past the renew deadline of the last
//     successful renewal, so that the kubelet restarts a process whose
//     runnables do not stop;
//   - readiness (AddReadyzCheck): ready once the Lease has been read
//     (elector.Elector.Synced), which stays true through API-server
//     outages so that they do not take every replica out of its Service.
//
// With LeaderElection off it adds nothing. For a ShardedManager it adds
// these for its embedded manager, and the shard group's as ShardsCheckName:
// liveness shard.Shards.Check (shards' controllers running past the
// member Lease's renew deadline), readiness shard.Shards.Synced. Call it
// before Start.
func AddHealthChecks(mgr manager.Manager) error {
	if sm, ok := mgr.(*ShardedManager); ok {
		if err := AddHealthChecks(sm.Manager); err != nil {
			return err
		}
		if err := sm.AddHealthzCheck(ShardsCheckName, sm.shards.Check); err != nil {
			return fmt.Errorf("elector ctrl: unable to add the shard group's liveness check: %w", err)
		}
		if err := sm.AddReadyzCheck(ShardsCheckName, func(*http.Request) error {
			if !sm.shards.Synced() {
				return errShardsNotSynced
			}
			return nil
		}); err != nil {
			return fmt.Errorf("elector ctrl: unable to add the shard group's readiness check: %w", err)
		}
		return nil
	}
	m, ok := mgr.(*Manager)
	if !ok {
		return fmt.Errorf("elector ctrl: AddHealthChecks needs a manager from elector's ctrl.NewManager or NewShardedManager, not %T", mgr)
	}
	if m.el == nil {
		return nil
	}
	if err := m.AddHealthzCheck(CheckName, m.el.Check); err != nil {
		return fmt.Errorf("elector ctrl: unable to add the liveness check: %w", err)
	}
	if err := m.AddReadyzCheck(CheckName, func(*http.Request) error {
		if !m.el.Synced() {
			return errNotSynced
		}
		return nil
	}); err != nil {
		return fmt.Errorf("elector ctrl: unable to add the readiness check: %w", err)
	}
	return nil
}
