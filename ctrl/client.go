package ctrl

import (
	"fmt"

	"k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"

	"github.com/elector-dev/elector"
)

// leaseClient returns what sets the elector's Lease client, built from
// cfg for the Lease's namespace.
func leaseClient(cfg *rest.Config, namespace string) (func(*elector.Config), error) {
	c, err := v1.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("elector ctrl: unable to create the Lease client: %w", err)
	}
	return func(ec *elector.Config) { ec.Leases = c.Leases(namespace) }, nil
}
