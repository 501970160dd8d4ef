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
	"reflect"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// renewed returns l with spec.renewTime moved to at (a write).
func renewed(at time.Time) leaseOpt {
	return withRenew(at)
}

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestTrackerHandoffAndRelease(t *testing.T) {
	tr := newTracker(time.Minute, 4, false)
	steps := []struct {
		now   time.Time
		typ   watch.EventType
		lease *coordinationv1.Lease
		want  []string
	}{
		{
			at(0), watch.Added, newLease("team-a", "l", "pod-1", 7, electorMarker),
			[]string{"02:00:00.000  team-a/l  pod-1 holds it (token 7, elector), lease 15s"},
		},
		{at(2000), watch.Modified, newLease("team-a", "l", "pod-1", 7, electorMarker, renewed(at(2000))), nil},
		{
			at(2100), watch.Modified, newLease("team-a", "l", "pod-1", 7, electorMarker, renewed(at(2000)), annotate(annotationHandoffTo, "pod-2")),
			[]string{"02:00:02.100  team-a/l  handoff requested to pod-2"},
		},
		{
			at(2110), watch.Modified, newLease("team-a", "l", "pod-2", 8, withMarker("pod-2", 8, true, "pod-1"), renewed(at(2110))),
			[]string{"02:00:02.110  team-a/l  pod-1 handed off to pod-2 (token 8)"},
		},
		{
			at(2114), watch.Modified, newLease("team-a", "l", "pod-2", 8, electorMarker, renewed(at(2114))),
			[]string{"02:00:02.114  team-a/l  pod-2 took up the Lease 4ms after pod-1 handed it over (token 8)"},
		},
		{
			at(3000), watch.Modified, newLease("team-a", "l", "pod-2", 8, electorMarker, renewed(at(3000)), annotate(annotationHandoffTo, "")),
			[]string{"02:00:03.000  team-a/l  handoff requested to anyone else"},
		},
		{
			at(3020), watch.Modified, newLease("team-a", "l", "", 8, electorMarker, renewed(at(3020))),
			[]string{"02:00:03.020  team-a/l  pod-2 released it (token 8)"},
		},
		{
			at(3025), watch.Modified, newLease("team-a", "l", "pod-3", 9, electorMarker, renewed(at(3025))),
			[]string{"02:00:03.025  team-a/l  pod-3 took over after the release (token 9); gap 5ms since the last write"},
		},
		{
			at(4000), watch.Deleted, newLease("team-a", "l", "pod-3", 9, electorMarker),
			[]string{"02:00:04.000  team-a/l  Lease deleted"},
		},
	}
	for i, s := range steps {
		got := tr.observe(s.now, s.typ, s.lease)
		if !reflect.DeepEqual(got, s.want) {
			t.Errorf("step %d: observe() =\n%q\nwant\n%q", i, got, s.want)
		}
	}
}

func TestTrackerExpiry(t *testing.T) {
	tr := newTracker(time.Minute, 4, false)
	tr.observe(at(0), watch.Added, newLease("team-a", "l", "cg-1", 2))
	if got := tr.tick(at(15000)); got != nil {
		t.Errorf("tick at the lease duration = %q, want nothing", got)
	}
	want := []string{"02:00:15.001  team-a/l  ANOMALY expired: cg-1 has not renewed for 15.001s (lease 15s) and no successor has taken over"}
	if got := tr.tick(at(15001)); !reflect.DeepEqual(got, want) {
		t.Errorf("tick after the lease duration = %q, want %q", got, want)
	}
	if got := tr.tick(at(16000)); got != nil {
		t.Errorf("a second tick = %q, want the anomaly reported once", got)
	}
	got := tr.observe(at(20000), watch.Modified, newLease("team-a", "l", "cg-2", 3, renewed(at(20000))))
	want = []string{"02:00:20.000  team-a/l  cg-2 took over from cg-1, which had expired (token 3); gap 20s since the last write"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("take-over = %q, want %q", got, want)
	}
}

func TestTrackerReleasedNobodyTakes(t *testing.T) {
	tr := newTracker(time.Minute, 4, false)
	tr.observe(at(0), watch.Added, newLease("team-a", "l", "pod-1", 2, electorMarker))
	tr.observe(at(1000), watch.Modified, newLease("team-a", "l", "", 2, electorMarker, renewed(at(1000))))
	want := []string{"02:00:16.001  team-a/l  ANOMALY released 15.001s ago and no candidate has taken it"}
	if got := tr.tick(at(16001)); !reflect.DeepEqual(got, want) {
		t.Errorf("tick = %q, want %q", got, want)
	}
}

func TestTrackerDeadTarget(t *testing.T) {
	tr := newTracker(time.Minute, 4, false)
	tr.observe(at(0), watch.Added, newLease("team-a", "l", "pod-1", 2, electorMarker))
	tr.observe(at(10), watch.Modified, newLease("team-a", "l", "ghost", 3, withMarker("ghost", 3, true, "pod-1"), renewed(at(10))))
	got := tr.tick(at(15011))
	if len(got) != 1 || !strings.Contains(got[0], "ANOMALY pod-1 handed the Lease to ghost 15.001s ago, which has not taken it up (not running?)") {
		t.Errorf("tick = %q", got)
	}
}

func TestTrackerFlapping(t *testing.T) {
	tr := newTracker(time.Minute, 4, false)
	tr.observe(at(0), watch.Added, newLease("team-a", "l", "a", 1))
	holders := []string{"b", "a", "b", "a", "b"}
	var flaps []string
	for i, h := range holders {
		ms := (i + 1) * 5000
		for _, line := range tr.observe(at(ms), watch.Modified, newLease("team-a", "l", h, int32(i+2), renewed(at(ms)))) {
			if strings.Contains(line, "ANOMALY flapping") {
				flaps = append(flaps, line)
			}
		}
	}
	want := []string{"02:00:20.000  team-a/l  ANOMALY flapping: 4 changes of holder within 1m0s (b -> a -> b -> a)"}
	if !reflect.DeepEqual(flaps, want) {
		t.Errorf("flapping lines = %q, want %q (once per window)", flaps, want)
	}
}

func TestTrackerRenewalsAndWithdrawal(t *testing.T) {
	tr := newTracker(time.Minute, 4, true)
	tr.observe(at(0), watch.Added, newLease("team-a", "l", "pod-1", 2, electorMarker, annotate(annotationHandoffTo, "pod-9")))
	got := tr.observe(at(2000), watch.Modified, newLease("team-a", "l", "pod-1", 2, electorMarker, renewed(at(2000)), annotate(annotationHandoffTo, "pod-9")))
	if want := []string{"02:00:02.000  team-a/l  pod-1 renewed (token 2), 2s after the last write"}; !reflect.DeepEqual(got, want) {
		t.Errorf("renewal = %q, want %q", got, want)
	}
	got = tr.observe(at(2500), watch.Modified, newLease("team-a", "l", "pod-1", 2, electorMarker, renewed(at(2000))))
	if want := []string{"02:00:02.500  team-a/l  handoff request withdrawn"}; !reflect.DeepEqual(got, want) {
		t.Errorf("withdrawal = %q, want %q", got, want)
	}
}

func TestTrackerListedExpired(t *testing.T) {
	tr := newTracker(time.Minute, 4, false)
	l := newLease("team-a", "l", "cg-1", 2, withWrite(t0.Add(-40*time.Second)))
	tr.observe(at(0), watch.Added, l)
	want := []string{"02:00:00.000  team-a/l  ANOMALY expired: cg-1 has not written it for 40s by the API server's clock (lease 15s) and no successor has taken over"}
	if got := tr.judgeListed(at(0), judge(l, t0)); !reflect.DeepEqual(got, want) {
		t.Errorf("judgeListed() = %q, want %q", got, want)
	}
	// Reported once: not again by the local expiry check.
	if got := tr.tick(at(20000)); got != nil {
		t.Errorf("tick() = %q, want nothing more", got)
	}
	held := newLease("team-a", "m", "pod-1", 2, electorMarker)
	tr.observe(at(0), watch.Added, held)
	if got := tr.judgeListed(at(0), judge(held, t0)); got != nil {
		t.Errorf("judgeListed(held) = %q, want nothing", got)
	}
}
