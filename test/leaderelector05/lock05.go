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
	"context"

	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// released stands, inside this process only, for the empty holder of a
// record that exists (see lock05). It is never written: no identity can
// contain a NUL byte.
const released = "\x00released"

// lock05 wraps client-go v0.23's EndpointsLock so that its LeaderElector
// treats the record as the 0.5 image's older copy of the same code
// (k8s.io/kubernetes pkg/client/leaderelection of 2016, vendored by
// contrib/election) did, where the two differ:
//
//   - An empty holderIdentity is a holder like any other: a candidate
//     takes the lock only once a lease duration has passed since it saw
//     the record change. client-go 1.14 and later take an empty holder at
//     once. Get hands v0.23 the placeholder released instead of "" when
//     the annotation exists (when it does not, both take the lock at
//     once).
//   - A renewal by the holder writes leaderTransitions 0: 0.5 carried
//     acquireTime over to a renewal but not leaderTransitions, so the
//     count is old+1 in the write that changes the holder and 0 in every
//     renewal after it (the seed's record shows 0 on a leader that had
//     acquired an annotation-less Endpoints object, i.e. written 1).
type lock05 struct {
	*resourcelock.EndpointsLock
	got string // holder of the record last read by Get, as written
}

func (l *lock05) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := l.EndpointsLock.Get(ctx)
	if err != nil {
		return rec, raw, err
	}
	l.got = rec.HolderIdentity
	if rec.HolderIdentity == "" && len(raw) > 0 {
		rec.HolderIdentity = released
	}
	return rec, raw, nil
}

func (l *lock05) Update(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	if rec.HolderIdentity == l.got {
		rec.LeaderTransitions = 0
	}
	return l.EndpointsLock.Update(ctx, rec)
}

// holderName is the name that 0.5 reported for a holder.
func holderName(holder string) string {
	if holder == released {
		return ""
	}
	return holder
}
