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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// States of a Lease.
const (
	stateHeld     = "held"
	stateExpired  = "expired"
	stateReleased = "released"
	// stateUnknown: a holder but no leaseDurationSeconds to judge by.
	stateUnknown = "unknown"
)

// Types of Lease, by who holds or uses it.
const (
	// typeElector: the last write carries a current elector marker; the
	// holder acts on handoff requests when the marker says so.
	typeElector = "elector"
	// typeClientGo: any other election Lease (client-go's
	// tools/leaderelection, or a compatible implementation).
	typeClientGo = "client-go"
	// typeNode: a kubelet's heartbeat in kube-node-lease.
	typeNode = "node"
	// typeAPIServer: a kube-apiserver identity Lease.
	typeAPIServer = "apiserver"
)

const (
	// nodeLeaseNamespace holds the kubelets' heartbeat Leases.
	nodeLeaseNamespace = "kube-node-lease"
	// apiserverIdentityLabel marks kube-apiserver identity Leases.
	apiserverIdentityLabel = "apiserver.kubernetes.io/identity"
)

// timePrecision is the resolution of the two server times compared to
// judge expiry: managedFields times and the HTTP Date header are both
// whole seconds, so a difference read from them may be off by up to a
// second either way. A Lease is called expired only when it is expired
// even if the true difference is a second shorter.
const timePrecision = time.Second

// Bases of the "since last renewal" measurement.
const (
	// basisServer: the API server's time of the last write that changed
	// the spec (managedFields), against the API server's clock (the
	// response's Date header). No other host's clock is involved.
	basisServer = "server"
	// basisHolder: spec.renewTime, written on the holder's clock, against
	// the API server's clock: used only when the Lease has no
	// managedFields, and then off by the holder's clock offset.
	basisHolder = "holder clock"
	// basisNone: no renewTime or no server time.
	basisNone = ""
)

// view is what the plugin shows of one Lease.
type view struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Holder    string `json:"holder"`
	Type      string `json:"type"`
	State     string `json:"state"`
	Token     int32  `json:"token"`
	// LeaseDuration is spec.leaseDurationSeconds; 0 when unset.
	LeaseDuration time.Duration `json:"leaseDuration"`
	// SinceRenewal is how long ago the spec was last written, by the
	// API server's clock (see basisServer); valid when RenewalBasis is set.
	SinceRenewal time.Duration `json:"sinceRenewal"`
	RenewalBasis string        `json:"renewalBasis,omitempty"`
	// Tenure is how long the holder has held the Lease: since
	// spec.acquireTime, which the holder wrote on its clock; valid when
	// TenureKnown.
	Tenure      time.Duration `json:"tenure"`
	TenureKnown bool          `json:"-"`
	AcquireTime *time.Time    `json:"acquireTime,omitempty"`
	RenewTime   *time.Time    `json:"renewTime,omitempty"`
	// LastWrite is the API server's time of the last spec write, from
	// managedFields.
	LastWrite *time.Time `json:"lastWrite,omitempty"`
	// ElectorVersion and CanHandOff come from a current marker.
	ElectorVersion string `json:"electorVersion,omitempty"`
	CanHandOff     bool   `json:"canHandOff"`
	// HandoffTo is a pending handoff request ("" = anyone else).
	HandoffTo       *string `json:"handoffTo,omitempty"`
	PreferredHolder string  `json:"preferredHolder,omitempty"`
	Strategy        string  `json:"strategy,omitempty"`
	// Group is set on the one view of a sharded group (typeSharded): the
	// view's other fields are its coordinator election's.
	Group *groupInfo `json:"group,omitempty"`
}

// judge computes the view of l at serverNow, the API server's time of the
// response that carried l (zero when unknown).
func judge(l *coordinationv1.Lease, serverNow time.Time) view {
	v := view{
		Namespace: l.Namespace,
		Name:      l.Name,
		Holder:    holderOf(l),
		Token:     tokenOf(l),
		Type:      typeOf(l),
	}
	if s := l.Spec.LeaseDurationSeconds; s != nil {
		v.LeaseDuration = time.Duration(*s) * time.Second
	}
	if p := l.Spec.PreferredHolder; p != nil {
		v.PreferredHolder = *p
	}
	if s := l.Spec.Strategy; s != nil {
		v.Strategy = string(*s)
	}
	if to, ok := l.Annotations[annotationHandoffTo]; ok {
		v.HandoffTo = &to
	}
	if m, _, current := markerOf(l); current {
		v.ElectorVersion = m.Version
		v.CanHandOff = m.Handoff
	}
	v.AcquireTime = microTime(l.Spec.AcquireTime)
	v.RenewTime = microTime(l.Spec.RenewTime)
	if w, ok := lastSpecWrite(l); ok {
		v.LastWrite = &w
	}

	if !serverNow.IsZero() {
		switch {
		case v.LastWrite != nil:
			v.SinceRenewal = nonNegative(serverNow.Sub(*v.LastWrite))
			v.RenewalBasis = basisServer
		case v.RenewTime != nil:
			v.SinceRenewal = nonNegative(serverNow.Sub(*v.RenewTime))
			v.RenewalBasis = basisHolder
		}
		if v.AcquireTime != nil && v.Holder != "" {
			v.Tenure = nonNegative(serverNow.Sub(*v.AcquireTime))
			v.TenureKnown = true
		}
	}

	switch {
	case v.Holder == "":
		v.State = stateReleased
	case v.LeaseDuration <= 0 || v.RenewalBasis == basisNone:
		v.State = stateUnknown
	case v.SinceRenewal > v.LeaseDuration+timePrecision:
		v.State = stateExpired
	default:
		v.State = stateHeld
	}
	return v
}

// typeOf classifies l.
func typeOf(l *coordinationv1.Lease) string {
	switch {
	case l.Namespace == nodeLeaseNamespace:
		return typeNode
	case l.Labels[apiserverIdentityLabel] != "":
		return typeAPIServer
	}
	if _, _, current := markerOf(l); current {
		return typeElector
	}
	return typeClientGo
}

// isHeartbeat reports the Leases that are not elections: node heartbeats
// and kube-apiserver identities. list and watch leave them out unless
// asked (--all-kinds).
func isHeartbeat(l *coordinationv1.Lease) bool {
	t := typeOf(l)
	return t == typeNode || t == typeAPIServer
}

// lastSpecWrite returns the API server's time of the last write that
// changed l's spec: the latest managedFields entry that owns a spec field.
// The API server sets an entry's time, on its own clock, whenever an
// operation of that manager changes a field, and every renewal changes
// spec.renewTime; an annotation-only write (a handoff request) owns no
// spec field and does not count. The time has whole seconds.
func lastSpecWrite(l *coordinationv1.Lease) (time.Time, bool) {
	var last time.Time
	for _, e := range l.ManagedFields {
		if e.Time == nil || e.FieldsV1 == nil || !ownsSpec(e.FieldsV1.GetRawBytes()) {
			continue
		}
		if e.Time.After(last) {
			last = e.Time.Time
		}
	}
	return last, !last.IsZero()
}

// ownsSpec reports whether a FieldsV1 set includes a field under spec.
func ownsSpec(raw []byte) bool {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return false
	}
	spec, ok := fields["f:spec"]
	if !ok {
		return false
	}
	var sub map[string]json.RawMessage
	return json.Unmarshal(spec, &sub) == nil && len(sub) > 0
}

func microTime(t *metav1.MicroTime) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	u := t.Time
	return &u
}

func nonNegative(d time.Duration) time.Duration {
	return max(d, 0)
}
