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

// errNotSynced is the readiness check's failure before the Lease was read.
var errNotSynced = errors.New("elector: the Lease has not been read yet")

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
// With LeaderElection off it adds nothing. Call it before Start.
func AddHealthChecks(mgr manager.Manager) error {
	m, ok := mgr.(*Manager)
	if !ok {
		return fmt.Errorf("elector ctrl: AddHealthChecks needs a manager from elector's ctrl.NewManager, not %T", mgr)
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
