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

package harness

import (
	"fmt"
)

// NewLibraryCluster starts n library candidates ("lib-0", ...) with the
// clock rates and offsets of s.
func NewLibraryCluster(e *Env, n int, t Timing, s Schedule) (*Cluster, error) {
	c := &Cluster{Env: e, Lease: t.Lease, Margin: t.Lease - t.Renew}
	for i := range n {
		rate, offset := 1.0, s.Offsets[i%len(s.Offsets)]
		if i < len(s.Rates) {
			rate = s.Rates[i]
		}
		l, err := e.StartLib(fmt.Sprintf("lib-%d", i), t, rate, offset, s.Seed+uint64(i))
		if err != nil {
			c.stop()
			return nil, err
		}
		c.Lib = append(c.Lib, l)
	}
	return c, nil
}

// NewSidecarCluster starts n sidecar replicas ("rep-0", ...).
func NewSidecarCluster(e *Env, b Binaries, n int, opts ReplicaOptions) (*Cluster, error) {
	c := &Cluster{Env: e, Lease: SidecarTTL, Margin: SidecarMargin}
	for i := range n {
		r, err := e.StartReplica(b, fmt.Sprintf("rep-%d", i), opts)
		if err != nil {
			c.stop()
			return nil, err
		}
		c.Reps = append(c.Reps, r)
	}
	return c, nil
}

// Stop stops every candidate and returns the problems found on the way
// (unexpected errors, exit codes, stragglers).
func (c *Cluster) Stop() []string { return c.stop() }
