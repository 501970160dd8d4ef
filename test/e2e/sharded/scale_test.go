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

package sharded

import (
	"syscall"
	"testing"
	"time"

	"github.com/elector-dev/elector/test/controlplane"
)

// TestScaleGateOn: the example operator scaled 1 → 4 → 2 replicas on an
// API server that serves sharded watches, while a driver creates,
// updates and deletes ConfigMaps. Every surviving object ends reconciled
// to its latest version by its shard's current owner with the shard's
// current token; no object and no shard had two owners at one instant;
// each replica's watches carried about 1/N of the events; no replica fell
// back to filtering on its side.
func TestScaleGateOn(t *testing.T) { scaleOneFourTwo(t, cp, true) }

// TestScaleGateOff: the same on an API server without the gate: the
// replicas filter on their side (each watch carries every event), say so
// in their log and metric, and the results are as correct.
func TestScaleGateOff(t *testing.T) { scaleOneFourTwo(t, gateOffPlane(t), false) }

// window is how long the driver runs in each steady state whose watch
// events are counted.
const window = 8 * time.Second

func scaleOneFourTwo(t *testing.T, c *controlplane.ControlPlane, gateOn bool) {
	e := setup(t, c)
	d := e.drive(t)

	r1 := e.start(t, "r1")
	e.waitBalanced(t, "r1")

	rs := []*replica{e.start(t, "r2"), e.start(t, "r3"), e.start(t, "r4")}
	e.waitBalanced(t, "r1", "r2", "r3", "r4")
	four := e.measure(t, d, window, "r1", "r2", "r3", "r4")

	// Scale down to two: SIGTERM, as a Deployment's scale-down sends.
	for _, r := range rs[1:] {
		if err := r.p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range rs[1:] {
		if code := r.exitCode(t); code != 0 {
			t.Errorf("%s exited with %d after SIGTERM, want 0", r.name, code)
		}
	}
	e.waitBalanced(t, "r1", "r2")
	two := e.measure(t, d, window, "r1", "r2")

	ops := d.stop(t)
	final := e.waitConverged(t, d, "r1", "r2")

	for _, m := range []measurement{four, two} {
		m.check(t, gateOn)
	}
	for _, r := range []*replica{r1, rs[0]} {
		e.checkFallback(t, r, gateOn)
	}
	for _, r := range []*replica{r1, rs[0]} {
		if err := r.p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := r.exitCode(t); code != 0 {
			t.Errorf("%s exited with %d after SIGTERM, want 0", r.name, code)
		}
	}
	h := e.history(t)
	v := h.check(t)
	t.Logf("gate on=%v: %d driver operations (%d objects survive), %d reconciles of %d objects by 4 replicas; %d shard terms, tokens growing per shard; overlapping reconciles of one object: %d; overlapping terms of one shard: %d; contended object locks: %d",
		gateOn, ops, len(final), len(h.recs), v.objects, v.terms, v.objectOverlaps, v.shardOverlaps, len(h.contended))
	for _, m := range []measurement{four, two} {
		t.Logf("%s", m)
	}
	if len(final) == 0 {
		t.Error("no object survived: the check of the final state proves nothing")
	}
}
