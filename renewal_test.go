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

package elector

import (
	"fmt"
	"testing"
	"time"
)

// TestFirstRenewalsOfManyElectionsAreSpread: a process that acquires a
// thousand elections sharing one watch within a moment must not renew
// them in one burst for ever. Each election's first renewal comes at a
// phase of its own within the second half of RetryPeriod (later renewals
// keep that phase), so no tenth of that half holds much more than its
// share.
func TestFirstRenewalsOfManyElectionsAreSpread(t *testing.T) {
	const n, buckets = 1000, 10
	p := DefaultRetryPeriod
	var count [buckets]int
	for i := range n {
		e := &Elector{cfg: Config{Name: fmt.Sprintf("shard-%d", i), Identity: "pod-a", RetryPeriod: p, Watch: &SharedWatch{}}}
		d := e.firstRenewal()
		if d < p/2 || d > p {
			t.Fatalf("%s: first renewal after %v, want within [%v, %v]", e.cfg.Name, d, p/2, p)
		}
		count[min(int((d-p/2)*buckets/(p/2+1)), buckets-1)]++
	}
	for i, c := range count {
		if c > 2*n/buckets {
			t.Errorf("%d of %d first renewals in [%v, %v): a burst (all buckets: %v)", c, n,
				p/2+time.Duration(i)*p/2/buckets, p/2+time.Duration(i+1)*p/2/buckets, count)
		}
	}
	// A lone election renews at RetryPeriod, as client-go does.
	if d := (&Elector{cfg: Config{Name: "lock", Identity: "a", RetryPeriod: p}}).firstRenewal(); d != p {
		t.Fatalf("lone election: first renewal after %v, want %v", d, p)
	}
}
