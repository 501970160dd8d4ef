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
	"reflect"
	"testing"
	"time"
)

func TestSchedulesAreReproducibleAndWithinBounds(t *testing.T) {
	const lease, margin, bound = 3 * time.Second, time.Second, 0.2
	for seed := range uint64(50) {
		a := Generate(seed, LibraryKinds, 6, 3, lease, margin, bound)
		b := Generate(seed, LibraryKinds, 6, 3, lease, margin, bound)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d gave two schedules:\n%s\n%s", seed, a, b)
		}
		for _, r := range a.Rates {
			if r <= 1-bound || r >= 1+bound {
				t.Fatalf("seed %d: clock rate %v outside the documented bound ±%v", seed, r, bound)
			}
		}
		s := Generate(seed, SidecarKinds, 6, 3, lease, margin, 0)
		for _, ep := range s.Episodes {
			for _, f := range ep.Faults {
				if f.Kind == PauseReplica && ep.Hold >= margin {
					t.Fatalf("seed %d: %s pauses a whole replica for %v, beyond the margin %v", seed, ep, ep.Hold, margin)
				}
			}
		}
		for _, r := range s.Rates {
			if r != 1 {
				t.Fatalf("sidecar clocks are real: rate %v", r)
			}
		}
	}
	if Generate(1, LibraryKinds, 6, 3, lease, margin, bound).String() == Generate(2, LibraryKinds, 6, 3, lease, margin, bound).String() {
		t.Fatal("seeds 1 and 2 gave the same schedule")
	}
}
