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
