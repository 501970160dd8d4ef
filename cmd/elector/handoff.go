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
	"sync/atomic"

	"github.com/elector-dev/elector"
)

// reasonHandedOff is the Event reason of a planned handoff: the message
// names the target and the new token (see elector.ReasonHandedOff).
const reasonHandedOff = elector.ReasonHandedOff

// handoffEvents is the elector.EventRecorder of the sidecar's Elector. It
// passes HandedOff to the Event recorder; BecameLeader and StoppedLeading
// the sidecar writes itself, with what it knows of the command's exit.
// The recorder is set once permissions are checked; until then, and
// without --events, Events are dropped.
type handoffEvents struct {
	rec atomic.Pointer[recorder]
}

var _ elector.EventRecorder = (*handoffEvents)(nil)

func (h *handoffEvents) Event(reason, message string) {
	if reason == reasonHandedOff {
		h.rec.Load().emit(reason, message) // a nil *recorder records nothing
	}
}

// handoffJSON is a pending planned handoff in /leader and /watch.
type handoffJSON struct {
	To              string `json:"to"`                        // the target; "" for anyone else
	RequestedAt     string `json:"requestedAt,omitempty"`     // the requester's time, RFC 3339
	PreferredHolder bool   `json:"preferredHolder,omitempty"` // the request is spec.preferredHolder
}

func toHandoffJSON(r *elector.HandoffRequest) *handoffJSON {
	if r == nil {
		return nil
	}
	return &handoffJSON{To: r.To, RequestedAt: rfc3339(r.RequestedAt), PreferredHolder: r.Preferred}
}
