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
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// event is a Lease Event as the sidecar writes it: named
// "<lease>.<UnixNano in hex>", timestamps with whole seconds.
func event(reason, message string, when time.Time) corev1.Event {
	return corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("l.%x", when.UnixNano()), Namespace: "team-a"},
		Reason:         reason,
		Message:        message,
		FirstTimestamp: metav1.NewTime(when.Truncate(time.Second)),
		LastTimestamp:  metav1.NewTime(when.Truncate(time.Second)),
	}
}

func TestParseEvent(t *testing.T) {
	tests := []struct {
		ev       corev1.Event
		identity string
		token    int32
		target   string
		kind     string
	}{
		{event(reasonBecameLeader, "pod-1 became leader (token 7)", at(1)), "pod-1", 7, "", kindBecame},
		{event(reasonStoppedLeading, "pod-1 stopped leading (token 7): handed off", at(2)), "pod-1", 7, "", kindStopped},
		{event(reasonHandedOff, "pod-1 handed off to pod-2 (token 8)", at(3)), "pod-1", 8, "pod-2", kindHanded},
		{event(reasonHandedOff, "pod-1 released the lease to anyone else (token 7)", at(4)), "pod-1", 7, "", kindReleased},
		{event(reasonClientGo, "cg-1 became leader", at(5)), "cg-1", -1, "", kindBecame},
		{event(reasonClientGo, "cg-1 stopped leading", at(6)), "cg-1", -1, "", kindStopped},
	}
	for _, tt := range tests {
		h, ok := parseEvent(&tt.ev)
		if !ok || h.Identity != tt.identity || h.Token != tt.token || h.Target != tt.target || h.kind() != tt.kind {
			t.Errorf("parseEvent(%q) = %+v (kind %s), %t", tt.ev.Message, h, h.kind(), ok)
		}
	}
	other := event("Scheduled", "x", at(0))
	if _, ok := parseEvent(&other); ok {
		t.Error("parseEvent took an unrelated Event")
	}
}

func TestEventTime(t *testing.T) {
	e := event(reasonBecameLeader, "pod-1 became leader (token 1)", at(1234))
	if got := eventTime(&e); !got.Equal(at(1234)) {
		t.Errorf("eventTime() = %v, want the nanoseconds from the name, %v", got, at(1234))
	}
	// A name that does not agree with the timestamp is not a time.
	e.Name = "l.1"
	if got := eventTime(&e); !got.Equal(at(1000)) {
		t.Errorf("eventTime() = %v, want the timestamp %v", got, at(1000))
	}
}

func TestRenderStatus(t *testing.T) {
	now := at(100_000)
	l := newLease("team-a", "l", "pod-2", 8, electorMarker, withWrite(now.Add(-2*time.Second)))
	v := judge(l, now)
	var hist []historyEvent
	for _, e := range []corev1.Event{
		event(reasonBecameLeader, "pod-1 became leader (token 7)", at(0)),
		event(reasonHandedOff, "pod-1 handed off to pod-2 (token 8)", at(50_000)),
		event(reasonStoppedLeading, "pod-1 stopped leading (token 7): handed off", at(50_001)),
		event(reasonBecameLeader, "pod-2 became leader (token 8)", at(50_010)),
	} {
		h, _ := parseEvent(&e)
		hist = append(hist, h)
	}
	got := renderStatus(v, hist, now)
	want := `Lease:            team-a/l
Holder:           pod-2 (elector v0.2.0; acts on handoff requests)
State:            held: last written 2s ago by the API server's clock (lease duration 15s)
Token:            8 (spec.leaseTransitions; grows on every change of holder)
Tenure:           6m40s (since acquireTime 2026-12-02T01:55:00.000Z, on the holder's clock)
Renew time:       2026-12-02T01:59:57.000Z (on the holder's clock)
Lease duration:   15s
Handoff request:  <none>

Recent holders, from the Events on the Lease (the API server keeps Events for
about an hour; times are the clocks of the hosts that wrote them):

  TIME (UTC)     HOLDER   EVENT
  02:00:00.000   pod-1    became leader, token 7
  02:00:50.000   pod-1    handed off to pod-2, token 8
  02:00:50.001   pod-1    stopped leading, token 7: handed off
  02:00:50.010   pod-2    became leader, token 8

Tenures from 02:00:00 to now (100s; one mark is 2.5s):

  pod-1  |████████████████████                    |  token 7  50s
  pod-2  |                    ████████████████████|  token 8  49s, leads now
`
	if got != want {
		t.Errorf("renderStatus() =\n%s\nwant\n%s", got, want)
	}
}

func TestRenderStatusClientGoNoEvents(t *testing.T) {
	v := judge(newLease("team-a", "l", "cg-1", 2, withWrite(t0.Add(-time.Minute))), t0)
	got := renderStatus(v, nil, t0)
	for _, want := range []string{
		"Holder:           cg-1 (client-go or compatible: no current elector marker; cannot hand off)",
		"State:            expired: last written 60s ago by the API server's clock, longer than the lease duration (15s); any candidate may take it",
		"No leadership Events.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("renderStatus() =\n%s\nwant it to contain %q", got, want)
		}
	}
}
