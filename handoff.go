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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotations of the planned-handoff protocol (docs/handoff.md). They work
// on any cluster: no feature-gated field is needed.
const (
	// AnnotationHandoffTo on a Lease asks its holder for a planned
	// handoff. Its value names the candidate to hand the Lease to, or is
	// empty for "anyone else". The holder stops its leader function first
	// and only then writes the Lease, removing the annotation.
	AnnotationHandoffTo = "elector.dev/handoff-to"
	// AnnotationHandoffRequestedAt optionally says when the request was
	// written, in RFC 3339 with nanoseconds, on the requester's clock. It
	// is informational only.
	AnnotationHandoffRequestedAt = "elector.dev/handoff-requested-at"
	// AnnotationHolder is the marker an elector holder writes on each of
	// its writes: a JSON [HolderMarker]. A client-go holder keeps metadata
	// it read, so a marker that names another holder, token or renewTime
	// than the Lease's spec is stale: someone else wrote the spec last,
	// and its holder may not understand handoffs.
	AnnotationHolder = "elector.dev/holder"
)

// Event reasons passed to Config.Events. The sidecar writes them as
// Kubernetes Events on the Lease; kubectl elector status reads them.
const (
	ReasonBecameLeader   = "BecameLeader"
	ReasonStoppedLeading = "StoppedLeading"
	ReasonHandedOff      = "HandedOff"
)

// ErrHandedOff is the cause of the leader function's context when a
// planned handoff ends the tenure (see context.Cause). Run does not
// return it: after the handoff it keeps campaigning as a follower.
var ErrHandedOff = errors.New("elector: leadership handed off")

// Errors of RequestHandoff.
var (
	// ErrNoHolder means the Lease has no holder: there is nothing to hand
	// off.
	ErrNoHolder = errors.New("elector: the Lease has no holder")
	// ErrHolderCannotHandOff means the holder did not write a current
	// elector marker: it is not an elector candidate (client-go, say), or
	// one older than handoffs, and would ignore the request.
	ErrHolderCannotHandOff = errors.New("elector: the holder does not understand handoff requests")
)

// EventRecorder receives the notable moments of this candidate's tenures,
// with one of the Reason constants and a message that names the candidate
// and the token, e.g. to write them as Kubernetes Events on the Lease
// (the sidecar does). Event is called from the election loop: it must not
// block.
type EventRecorder interface {
	Event(reason, message string)
}

// HolderMarker is the content of the AnnotationHolder annotation.
type HolderMarker struct {
	// Identity is the holder the writer wrote (the writer itself, the
	// target of a transfer, or "" on a release).
	Identity string `json:"identity"`
	// Token is the leaseTransitions value written.
	Token int64 `json:"token"`
	// Version is the elector version of the writer.
	Version string `json:"version,omitempty"`
	// Handoff is true for a holder that acts on handoff requests.
	Handoff bool `json:"handoff"`
	// HandedBy names the previous holder on a transfer to a named target;
	// the target keeps the token written (it renews, without a new
	// transition) only when HandedBy is set.
	HandedBy string `json:"handedBy,omitempty"`
	// RenewTime is the spec.renewTime written, to the microsecond. Every
	// renewal writes a new one, so a renewal by anyone else — a client-go
	// holder with the same identity and token, which keeps the metadata
	// it read — makes the marker stale. Markers written before it
	// existed (elector v0.x before issue 18) are never current.
	RenewTime time.Time `json:"renewTime,omitzero"`
}

// MarkerOf reads the holder marker of l. current reports whether it
// describes the Lease's present spec (identity, token and renewTime match
// it), i.e. whether an elector wrote the spec last: only then does
// Handoff say whether the holder understands handoff requests.
func MarkerOf(l *coordinationv1.Lease) (m HolderMarker, current bool) {
	raw, ok := l.Annotations[AnnotationHolder]
	if !ok || json.Unmarshal([]byte(raw), &m) != nil {
		return HolderMarker{}, false
	}
	rec := recordOf(l)
	return m, m.Identity == rec.holder && m.Token == int64(rec.transitions) &&
		!m.RenewTime.IsZero() && m.RenewTime.Equal(rec.renewTime)
}

// HandoffRequest is a pending planned handoff.
type HandoffRequest struct {
	// To names the target; "" means anyone else.
	To string
	// RequestedAt is the requester's time, if it wrote one.
	RequestedAt time.Time
	// Preferred is true when the request is the Lease's
	// spec.preferredHolder (Coordinated Leader Election) rather than the
	// AnnotationHandoffTo annotation.
	Preferred bool
}

// HandoffRequestOf returns the handoff request on l, if any: the
// AnnotationHandoffTo annotation, else a spec.preferredHolder (set
// together with spec.strategy) that names another candidate than the
// holder.
func HandoffRequestOf(l *coordinationv1.Lease) (HandoffRequest, bool) {
	if l == nil {
		return HandoffRequest{}, false
	}
	if to, ok := l.Annotations[AnnotationHandoffTo]; ok {
		r := HandoffRequest{To: to}
		if at, err := time.Parse(time.RFC3339Nano, l.Annotations[AnnotationHandoffRequestedAt]); err == nil {
			r.RequestedAt = at
		}
		return r, true
	}
	rec := recordOf(l)
	if rec.preferred != "" && rec.holder != "" && rec.preferred != rec.holder {
		return HandoffRequest{To: rec.preferred, Preferred: true}, true
	}
	return HandoffRequest{}, false
}

// handoffRetries bounds the attempts of RequestHandoff when the Lease
// changes under it: each renewal, transfer and concurrent request changes
// its resourceVersion. Each attempt is a GET and a PUT, so a burst of
// handoffs and concurrent requesters conflicts a few times at most.
const handoffRetries = 20

// RequestHandoff asks the holder of the Lease name for a planned handoff
// to the candidate to ("" for anyone else): it writes AnnotationHandoffTo
// and AnnotationHandoffRequestedAt with an update that carries the Lease's
// resourceVersion, retrying on conflicts. It returns the Lease as written.
// It does not wait for the handoff: watch the Lease for a new holder.
//
// It refuses with ErrNoHolder when the Lease is free and with
// ErrHolderCannotHandOff when its holder did not write a current marker
// (AnnotationHolder): someone else — a client-go candidate, say, even one
// with the holder's identity — wrote the spec last, and nobody would
// serve the request. Requests naming a candidate that is not running are
// accepted: the holder stops and hands the Lease to it, and after the
// lease duration any candidate may take it.
func RequestHandoff(ctx context.Context, leases LeaseClient, name, to string) (*coordinationv1.Lease, error) {
	return requestHandoff(ctx, leases, name, to, time.Now())
}

// Handoff asks the current holder of this Elector's Lease for a planned
// handoff to the candidate to ("" for anyone else), as RequestHandoff
// does. If this candidate leads, its own Run performs the handoff.
func (e *Elector) Handoff(ctx context.Context, to string) error {
	_, err := requestHandoff(ctx, e.leases, e.cfg.Name, to, e.clk.Now())
	return err
}

func requestHandoff(ctx context.Context, leases LeaseClient, name, to string, now time.Time) (*coordinationv1.Lease, error) {
	for attempt := 0; ; attempt++ {
		l, err := leases.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("unable to get Lease %s: %w", name, err)
		}
		holder := recordOf(l).holder
		if holder == "" {
			return nil, ErrNoHolder
		}
		if m, current := MarkerOf(l); !current || !m.Handoff {
			return nil, fmt.Errorf("%w: holder %q of Lease %s did not write the Lease last as an elector candidate (%s): "+
				"it would ignore the request; stop it or delete its Pod to move leadership",
				ErrHolderCannotHandOff, holder, name, markerProblem(m, current))
		}
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[AnnotationHandoffTo] = to
		l.Annotations[AnnotationHandoffRequestedAt] = now.UTC().Format(time.RFC3339Nano)
		got, err := leases.Update(ctx, l, metav1.UpdateOptions{})
		switch {
		case err == nil:
			return got, nil
		case apierrors.IsConflict(err) && attempt < handoffRetries:
			continue
		default:
			return nil, fmt.Errorf("unable to write the handoff request on Lease %s: %w", name, err)
		}
	}
}

// markerProblem says why a marker does not let a holder hand off.
func markerProblem(m HolderMarker, current bool) string {
	switch {
	case !current && m.Identity == "":
		return "no " + AnnotationHolder + " marker; client-go or an elector older than handoffs"
	case !current:
		return "the " + AnnotationHolder + " marker is stale: client-go or another writer renewed the Lease since"
	default:
		return "its marker says it does not act on handoff requests"
	}
}

// marker is the AnnotationHolder value for a write of rec by this
// candidate; handedBy is set on a transfer to a named target.
func (e *Elector) marker(rec record, handedBy string) string {
	b, _ := json.Marshal(HolderMarker{
		Identity:  rec.holder,
		Token:     int64(rec.transitions),
		Version:   e.version(),
		Handoff:   true,
		HandedBy:  handedBy,
		RenewTime: rec.renewTime,
	})
	return string(b)
}

func (e *Elector) version() string {
	if e.cfg.Version != "" {
		return e.cfg.Version
	}
	return moduleVersion()
}

// moduleVersion is the version of this module in the build info: the
// dependency's version in a program that imports elector, the main
// module's in elector's own binaries; "(devel)" when unknown.
var moduleVersion = sync.OnceValue(func() string {
	const path = "github.com/elector-dev/elector"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	if bi.Main.Path == path && bi.Main.Version != "" {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			return d.Version
		}
	}
	return "(devel)"
})

// setMarker writes the marker for rec into l's annotations.
func (e *Elector) setMarker(l *coordinationv1.Lease, rec record, handedBy string) {
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[AnnotationHolder] = e.marker(rec, handedBy)
}

// clearRequest removes the handoff request annotations from l.
func clearRequest(l *coordinationv1.Lease) {
	delete(l.Annotations, AnnotationHandoffTo)
	delete(l.Annotations, AnnotationHandoffRequestedAt)
}

// handedTo reports whether l is a transfer of the Lease to identity by
// another elector holder that the named target has not renewed yet: the
// spec names identity and a current marker says who handed it.
func handedTo(l *coordinationv1.Lease, identity string) bool {
	if l == nil {
		return false
	}
	m, current := MarkerOf(l)
	return current && m.Identity == identity && m.HandedBy != "" && m.HandedBy != identity
}

// event passes an Event to Config.Events, if set.
func (e *Elector) event(reason, format string, args ...any) {
	if e.cfg.Events != nil {
		e.cfg.Events.Event(reason, fmt.Sprintf(format, args...))
	}
}
