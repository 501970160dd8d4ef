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
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// record is the part of a Lease spec that elections read and write. It is
// the same record client-go's LeaseLock keeps, so elector and client-go
// candidates can share a Lease.
type record struct {
	holder        string
	durationSecs  int32 // as written; may be garbage if edited by hand
	acquireTime   time.Time
	renewTime     time.Time
	transitions   int32
	hasDuration   bool
	strategy      string
	preferred     string
	hasAcquire    bool
	hasRenew      bool
	hasTransition bool
}

func recordOf(l *coordinationv1.Lease) record {
	s := l.Spec
	var r record
	if s.HolderIdentity != nil {
		r.holder = *s.HolderIdentity
	}
	if s.LeaseDurationSeconds != nil {
		r.durationSecs, r.hasDuration = *s.LeaseDurationSeconds, true
	}
	if s.AcquireTime != nil {
		r.acquireTime, r.hasAcquire = s.AcquireTime.Time, true
	}
	if s.RenewTime != nil {
		r.renewTime, r.hasRenew = s.RenewTime.Time, true
	}
	if s.LeaseTransitions != nil {
		r.transitions, r.hasTransition = *s.LeaseTransitions, true
	}
	if s.Strategy != nil {
		r.strategy = string(*s.Strategy)
	}
	if s.PreferredHolder != nil {
		r.preferred = *s.PreferredHolder
	}
	return r
}

// equal reports whether two records are the same, to the precision the API
// stores (microseconds).
func (r record) equal(o record) bool {
	return r.holder == o.holder && r.durationSecs == o.durationSecs && r.hasDuration == o.hasDuration &&
		r.acquireTime.Equal(o.acquireTime) && r.renewTime.Equal(o.renewTime) &&
		r.transitions == o.transitions && r.strategy == o.strategy && r.preferred == o.preferred
}

// duration is how long, after a candidate observed this record, the holder
// may still act. Missing, zero or negative values (only a hand edit writes
// those) fall back to the candidate's own lease duration, never to less.
func (r record) duration(own time.Duration) time.Duration {
	if !r.hasDuration || r.durationSecs <= 0 {
		return own
	}
	return max(time.Duration(r.durationSecs)*time.Second, own)
}

// apply writes r into the spec of l as client-go's LeaseLock.Update does,
// keeping Strategy and PreferredHolder as they are.
func (r record) apply(l *coordinationv1.Lease) {
	holder := r.holder
	dur := r.durationSecs
	tr := r.transitions
	l.Spec.HolderIdentity = &holder
	l.Spec.LeaseDurationSeconds = &dur
	l.Spec.AcquireTime = &metav1.MicroTime{Time: r.acquireTime}
	l.Spec.RenewTime = &metav1.MicroTime{Time: r.renewTime}
	l.Spec.LeaseTransitions = &tr
}

// truncate rounds t the way the API server stores MicroTime, so that the
// record we keep equals the one we will read back.
func truncate(t time.Time) time.Time { return t.Truncate(time.Microsecond) }
