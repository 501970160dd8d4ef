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

package elector_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/elector-dev/elector"
)

// TestHandoffAfterStopGraceButBeforeTheRenewDeadlineIsWritten pins down
// what doc.go and docs/handoff.md say: work that returns after StopGrace
// (renewals have stopped) but before the renew deadline of the last
// renewal is still followed by the transfer, after its return; only work
// that has not returned by the renew deadline gets none (see
// TestHandoffToWorkThatIgnoresItsContextEndsInAnOverrun).
func TestHandoffAfterStopGraceButBeforeTheRenewDeadlineIsWritten(t *testing.T) {
	w := newWorld(t)
	overdue := make(chan struct{}, 1)
	a := w.worker("a", true, func(c *elector.Config) {
		c.RetryPeriod = 3 * time.Second // no renewal due at StopGrace (2s)
		c.Logger = slog.New(&signalHandler{Handler: c.Logger.Handler(), msg: "Leader work has not stopped within StopGrace of a handoff request; renewals stop", ch: overdue})
	})
	wait(t, a.started, "a to lead")
	b := w.worker("b", false, nil)
	follows(t, &candidate{id: "b", e: b.e}, "a")

	w.request("b")
	wait(t, a.causes, "a's work to be cancelled")
	w.clock.Step(elector.DefaultStopGrace)
	wait(t, overdue, "a to give up renewing")
	w.clock.Step(elector.DefaultStopGrace) // 4s of the 10s renew deadline
	if l := w.get(); holder(l) != "a" {
		t.Fatalf("holder = %q while a's work still runs, want a", holder(l))
	}
	a.release <- struct{}{}
	wait(t, a.left, "a's work to stop")
	if term := wait(t, b.started, "b to lead after the transfer"); term.Token != 1 {
		t.Fatalf("b's token = %d, want 1 (a transfer)", term.Token)
	}
	select {
	case <-a.done:
		t.Fatalf("a's Run returned %v; want it to go on as a follower after the handoff", a.err)
	default:
	}
	w.checkNoOverlap()
}
