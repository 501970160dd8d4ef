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

package main

import (
	"strings"
	"testing"
	"time"
)

func TestRefusal(t *testing.T) {
	tests := []struct {
		name  string
		lease leaseOpt
		opts  []leaseOpt
		want  string // substring; "" = no refusal
	}{
		{name: "elector holder with handoff", opts: []leaseOpt{electorMarker}, want: ""},
		{name: "client-go holder", want: "the Lease has no elector marker (annotation elector.dev/holder), so its holder is a client-go (or other non-elector) candidate. Refusing instead of waiting. To move it anyway, delete pod-1's Pod"},
		{name: "stale marker", opts: []leaseOpt{withMarker("pod-0", 6, true, "")}, want: "the elector marker names pod-0 with token 6, but the Lease names pod-1 with token 7, so the last write was not an elector candidate's"},
		{name: "elector without handoff", opts: []leaseOpt{withMarker("pod-1", 7, false, "")}, want: "an elector v0.2.0 that does not act on handoff requests; upgrade it"},
		{name: "expired", opts: []leaseOpt{electorMarker, withWrite(t0.Add(-time.Minute))}, want: "Lease team-a/l is expired: pod-1 has not written it for 1m0s (lease duration 15s), so it is not running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := refusal(newLease("team-a", "l", "pod-1", 7, tt.opts...), t0)
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("refusal() = %q, want it to contain %q", got, tt.want)
			}
		})
	}
	if got := refusal(newLease("team-a", "l", "", 7), t0); !strings.Contains(got, "has no holder (released): there is nothing to hand off") {
		t.Errorf("refusal(released) = %q", got)
	}
}

func TestHandoffWaitToTarget(t *testing.T) {
	w := handoffWait{old: "pod-1", to: "pod-2"}
	steps := []struct {
		opts    []leaseOpt
		holder  string
		token   int32
		done    bool
		errPart string
	}{
		// The request itself, then the old leader's renewals while its work stops.
		{holder: "pod-1", token: 7, opts: []leaseOpt{electorMarker, annotate(annotationHandoffTo, "pod-2")}},
		{holder: "pod-1", token: 7, opts: []leaseOpt{electorMarker, annotate(annotationHandoffTo, "pod-2")}},
		// The old leader's transfer to the target.
		{holder: "pod-2", token: 8, opts: []leaseOpt{withMarker("pod-2", 8, true, "pod-1")}},
		// The target's own write.
		{holder: "pod-2", token: 8, opts: []leaseOpt{electorMarker}, done: true},
	}
	for i, s := range steps {
		done, err := w.observe(newLease("team-a", "l", s.holder, s.token, s.opts...), time.Duration(i+1)*time.Millisecond)
		if done != s.done || err != nil {
			t.Fatalf("step %d: observe() = %t, %v; want %t, nil", i, done, err, s.done)
		}
	}
	if w.took != 4*time.Millisecond || w.handedAt != 3*time.Millisecond {
		t.Errorf("took %v, handed at %v; want 4ms and 3ms", w.took, w.handedAt)
	}
}

func TestHandoffWaitToAnyone(t *testing.T) {
	w := handoffWait{old: "pod-1"}
	if done, err := w.observe(newLease("team-a", "l", "", 7, electorMarker), 2*time.Millisecond); done || err != nil {
		t.Fatalf("release: observe() = %t, %v", done, err)
	}
	if done, err := w.observe(newLease("team-a", "l", "pod-3", 8, electorMarker), 5*time.Millisecond); !done || err != nil {
		t.Fatalf("take-over: observe() = %t, %v", done, err)
	}
	if w.releasedAt != 2*time.Millisecond || w.took != 5*time.Millisecond {
		t.Errorf("released at %v, took %v", w.releasedAt, w.took)
	}
}

func TestHandoffWaitFailures(t *testing.T) {
	w := handoffWait{old: "pod-1", to: "pod-2"}
	_, err := w.observe(newLease("team-a", "l", "pod-3", 8, electorMarker), time.Millisecond)
	var ee *exitError
	if !asExit(err, &ee) || ee.code != ExitTimeout || !strings.Contains(ee.msg, "pod-3 took the Lease (token 8), not the requested pod-2") {
		t.Errorf("another holder: err = %v", err)
	}
	w = handoffWait{old: "pod-1", to: "pod-2"}
	_, err = w.observe(newLease("team-a", "l", "pod-1", 7, electorMarker), time.Millisecond)
	if !asExit(err, &ee) || ee.code != ExitTimeout || !strings.Contains(ee.msg, "the handoff request was removed from the Lease, but pod-1 still leads") {
		t.Errorf("withdrawn: err = %v", err)
	}
}

func TestHandoffWaitTakenBack(t *testing.T) {
	w := handoffWait{old: "pod-1"}
	w.observe(newLease("team-a", "l", "", 7, electorMarker), 4*time.Millisecond)
	_, err := w.observe(newLease("team-a", "l", "pod-1", 8, electorMarker), 9*time.Millisecond)
	var ee *exitError
	if !asExit(err, &ee) || ee.code != ExitTimeout || ee.msg != "pod-1 released the Lease after 4ms but took it back itself (token 8) before another candidate took it; are other candidates running?" {
		t.Errorf("taken back: err = %v", err)
	}
}

func TestHandoffTimeoutReason(t *testing.T) {
	w := handoffWait{old: "pod-1", to: "pod-2"}
	if got := w.timeoutReason(30*time.Second, t0, "team-a", "l"); got != "pod-1 did not hand off team-a/l within 30s (it stops its work before it writes the Lease; is the work slow to stop?)" {
		t.Errorf("no reaction: %q", got)
	}
	w.observe(newLease("team-a", "l", "pod-2", 8, withMarker("pod-2", 8, true, "pod-1")), 12*time.Millisecond)
	want := "pod-1 handed team-a/l to pod-2 after 12ms, but pod-2 did not take it up within 30s: it may not be running. Any candidate may take the Lease after its lease duration (15s)"
	if got := w.timeoutReason(30*time.Second, t0, "team-a", "l"); got != want {
		t.Errorf("dead target:\n got %q\nwant %q", got, want)
	}
	w = handoffWait{old: "pod-1"}
	w.observe(newLease("team-a", "l", "", 7, electorMarker), 3*time.Millisecond)
	if got := w.timeoutReason(time.Second, t0, "team-a", "l"); got != "pod-1 released team-a/l after 3ms, but no other candidate took it within 1s" {
		t.Errorf("released: %q", got)
	}
}
