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
	"encoding/json"
	"testing"
	"time"

	"github.com/elector-dev/elector"
)

// /leader shows a pending handoff, and GET / stays 0.5's exact body.
func TestHTTPLeaderShowsAPendingHandoff(t *testing.T) {
	v := &fakeView{}
	h, _ := newTestHandlers(v)
	m := h.mux()
	v.set(elector.Leader{Identity: "pod-a", Token: 3})
	if body := get(t, m, "GET", "/leader").Body.String(); json.Valid([]byte(body)) && containsKey(t, body, "handoff") {
		t.Fatalf("/leader with no request = %s, want no handoff", body)
	}
	at := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	v.set(elector.Leader{Identity: "pod-a", Token: 3, Handoff: &elector.HandoffRequest{To: "pod-b", RequestedAt: at}})
	var got leaderJSON
	if err := json.Unmarshal(get(t, m, "GET", "/leader").Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Handoff == nil || got.Handoff.To != "pod-b" || got.Handoff.RequestedAt != "2026-12-02T03:00:00Z" || got.Handoff.PreferredHolder {
		t.Fatalf("/leader handoff = %+v, want to pod-b at 03:00", got.Handoff)
	}
	if body := get(t, m, "GET", "/").Body.String(); body != `{"name":"pod-a"}` {
		t.Fatalf("GET / = %q", body)
	}
}

func containsKey(t *testing.T, body, key string) bool {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	_, ok := m[key]
	return ok
}

// The sidecar's Elector passes HandedOff to the Event recorder and
// nothing else (it writes BecameLeader and StoppedLeading itself).
func TestHandoffEventsPassOnlyHandedOff(t *testing.T) {
	var h handoffEvents
	h.Event(elector.ReasonHandedOff, "before the recorder exists") // dropped, no panic
	rec := &recorder{queue: make(chan eventReq, 4)}
	h.rec.Store(rec)
	h.Event(elector.ReasonBecameLeader, "a became leader (token 1)")
	h.Event(elector.ReasonHandedOff, "a handed off to b (token 2)")
	close(rec.queue)
	var got []eventReq
	for r := range rec.queue {
		got = append(got, r)
	}
	if len(got) != 1 || got[0].reason != "HandedOff" || got[0].message != "a handed off to b (token 2)" {
		t.Fatalf("queued events = %+v, want the HandedOff one only", got)
	}
}
