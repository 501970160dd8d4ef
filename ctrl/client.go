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
