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
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// t0 is the fixed "now" of the unit tests.
var t0 = time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)

// leaseOpt shapes a test Lease.
type leaseOpt func(*coordinationv1.Lease)

// newLease is Lease ns/name held by holder with token, lease duration
// 15s, acquired 5 minutes before t0 and written (by the API server's
// managedFields time and the holder's renewTime) 3s before t0.
func newLease(ns, name, holder string, token int32, opts ...leaseOpt) *coordinationv1.Lease {
	dur := int32(15)
	acq := metav1.NewMicroTime(t0.Add(-5 * time.Minute))
	ren := metav1.NewMicroTime(t0.Add(-3 * time.Second))
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: "1"},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: &holder, LeaseTransitions: &token, LeaseDurationSeconds: &dur,
			AcquireTime: &acq, RenewTime: &ren,
		},
	}
	withWrite(t0.Add(-3 * time.Second))(l)
	for _, o := range opts {
		o(l)
	}
	// A marker from withMarker was written with the spec's last write.
	var m marker
	if raw, ok := l.Annotations[annotationHolder]; ok && json.Unmarshal([]byte(raw), &m) == nil && m.RenewTime.IsZero() && l.Spec.RenewTime != nil {
		m.RenewTime = l.Spec.RenewTime.Time
		b, _ := json.Marshal(m)
		l.Annotations[annotationHolder] = string(b)
	}
	return l
}

// withWrite sets the managedFields entry of the holder's writes.
func withWrite(at time.Time) leaseOpt {
	return func(l *coordinationv1.Lease) {
		mt := metav1.NewTime(at)
		l.ManagedFields = []metav1.ManagedFieldsEntry{{
			Manager: "elector", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "coordination.k8s.io/v1",
			Time: &mt, FieldsType: "FieldsV1",
			FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:holderIdentity":{},"f:renewTime":{}}}`),
		}}
	}
}

// withRenew sets spec.renewTime (the holder's clock).
func withRenew(at time.Time) leaseOpt {
	return func(l *coordinationv1.Lease) {
		t := metav1.NewMicroTime(at)
		l.Spec.RenewTime = &t
	}
}

// withMarker writes an elector marker for identity and token.
func withMarker(identity string, token int64, handoff bool, handedBy string) leaseOpt {
	return func(l *coordinationv1.Lease) {
		// newLease stamps the spec's final renewTime into it: the marker
		// of the spec's last write.
		b, _ := json.Marshal(marker{Identity: identity, Token: token, Version: "v0.2.0", Handoff: handoff, HandedBy: handedBy})
		annotate(annotationHolder, string(b))(l)
	}
}

func annotate(k, v string) leaseOpt {
	return func(l *coordinationv1.Lease) {
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[k] = v
	}
}

// electorMarker is a current marker for the Lease's holder and token.
func electorMarker(l *coordinationv1.Lease) {
	withMarker(holderOf(l), int64(tokenOf(l)), true, "")(l)
}

func rv(n int) leaseOpt {
	return func(l *coordinationv1.Lease) { l.ResourceVersion = fmt.Sprint(n) }
}
