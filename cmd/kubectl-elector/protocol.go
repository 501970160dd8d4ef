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
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
)

// The planned-handoff protocol on the Lease (docs/handoff.md), as the
// library (package elector: AnnotationHandoffTo, AnnotationHolder,
// HolderMarker) writes and reads it. The plugin keeps its own copy so
// that it builds without the library's dependencies; the e2e tests run it
// against the sidecar to keep the two in step.
const (
	// annotationHandoffTo is a handoff request: the target's identity, or
	// "" for anyone else.
	annotationHandoffTo = "elector.dev/handoff-to"
	// annotationHandoffRequestedAt is when the request was written, RFC
	// 3339 with nanoseconds, on the requester's clock (informational).
	annotationHandoffRequestedAt = "elector.dev/handoff-requested-at"
	// annotationHolder is the marker an elector holder writes on each of
	// its writes.
	annotationHolder = "elector.dev/holder"
)

// Event reasons on Leases: elector's (the sidecar, and library users who
// opt in) and client-go's tools/leaderelection ("LeaderElection", with
// the message "<identity> became leader" or "<identity> stopped leading").
const (
	reasonBecameLeader   = "BecameLeader"
	reasonStoppedLeading = "StoppedLeading"
	reasonHandedOff      = "HandedOff"
	reasonClientGo       = "LeaderElection"
)

// marker is the JSON of annotationHolder.
type marker struct {
	Identity string `json:"identity"`
	Token    int64  `json:"token"`
	Version  string `json:"version,omitempty"`
	Handoff  bool   `json:"handoff"`
	// HandedBy names the previous holder on a transfer to a named target,
	// until the target has written the Lease itself.
	HandedBy string `json:"handedBy,omitempty"`
	// RenewTime is the spec.renewTime written; every renewal by anyone
	// else (a client-go holder with the same identity and token) changes
	// it. Markers without it (older electors) are never current.
	RenewTime time.Time `json:"renewTime,omitzero"`
}

// markerOf reads the marker of l. current is true when it describes the
// Lease's present holder, token and renewTime, i.e. an elector candidate
// wrote the Lease's spec last; a client-go holder keeps the annotations it
// read, so its marker names an older holder, token or renewTime.
func markerOf(l *coordinationv1.Lease) (m marker, present, current bool) {
	raw, ok := l.Annotations[annotationHolder]
	if !ok || json.Unmarshal([]byte(raw), &m) != nil {
		return marker{}, false, false
	}
	var renew time.Time
	if l.Spec.RenewTime != nil {
		renew = l.Spec.RenewTime.Time
	}
	return m, true, m.Identity == holderOf(l) && m.Token == int64(tokenOf(l)) &&
		!m.RenewTime.IsZero() && m.RenewTime.Equal(renew)
}

// holderOf is spec.holderIdentity, "" when unset.
func holderOf(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// tokenOf is spec.leaseTransitions, elector's fencing token.
func tokenOf(l *coordinationv1.Lease) int32 {
	if l.Spec.LeaseTransitions == nil {
		return 0
	}
	return *l.Spec.LeaseTransitions
}
