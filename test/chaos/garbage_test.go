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

package chaos

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/elector-dev/elector/test/chaos/harness"
	"github.com/elector-dev/elector/test/chaos/history"
)

// TestGarbageLeaseOnTheRealAPIServer edits the Lease by hand with garbage
// that kube-apiserver accepts — before the candidates start, or under a
// running leader — and checks that no two candidates ever lead at once.
// (The fake Lease API takes any garbage: see FuzzGarbageLease at the repo
// root.) kube-apiserver itself rejects negative durations and
// transitions; the first case checks that.
func TestGarbageLeaseOnTheRealAPIServer(t *testing.T) {
	t.Parallel() // no fault on the shared control plane: see main_test.go
	far := metav1.NewMicroTime(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC))
	past := metav1.NewMicroTime(time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC))
	for _, tc := range []struct {
		name string
		// before is the Lease when candidates start (nil: none).
		before *coordinationv1.LeaseSpec
		// edit changes the Lease under the running leader (nil: none).
		edit func(s *coordinationv1.LeaseSpec)
		// leads reports whether a leader must follow within the guard.
		leads bool
		// runErr, if set, is in the error every Run must return.
		runErr string
	}{
		{
			name:   "empty holder, huge duration, no times",
			before: &coordinationv1.LeaseSpec{HolderIdentity: ptr.To(""), LeaseDurationSeconds: ptr.To[int32](math.MaxInt32)},
			leads:  true,
		},
		{
			name:   "huge foreign holder, future times",
			before: &coordinationv1.LeaseSpec{HolderIdentity: ptr.To(strings.Repeat("g", 200000)), AcquireTime: &far, RenewTime: &far, LeaseTransitions: ptr.To[int32](5)},
			leads:  true,
		},
		{
			name:   "foreign holder, duration 1s, times in 1970",
			before: &coordinationv1.LeaseSpec{HolderIdentity: ptr.To("ghost"), LeaseDurationSeconds: ptr.To[int32](1), AcquireTime: &past, RenewTime: &past},
			leads:  true,
		},
		{
			name:   "transitions going backwards under the leader",
			before: &coordinationv1.LeaseSpec{HolderIdentity: ptr.To(""), LeaseTransitions: ptr.To[int32](5)},
			edit:   func(s *coordinationv1.LeaseSpec) { s.LeaseTransitions = ptr.To[int32](2); s.RenewTime = nil },
			leads:  true,
		},
		{
			name: "times removed and duration huge under the leader",
			edit: func(s *coordinationv1.LeaseSpec) {
				s.AcquireTime, s.RenewTime, s.LeaseDurationSeconds = nil, nil, ptr.To[int32](math.MaxInt32)
			},
			leads: true,
		},
		{
			name:   "foreign holder with the last transitions an int32 holds",
			before: &coordinationv1.LeaseSpec{HolderIdentity: ptr.To("ghost"), LeaseTransitions: ptr.To[int32](math.MaxInt32)},
			leads:  false, runErr: "fencing tokens exhausted",
		}, // the next token does not fit in leaseTransitions
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := t.Context()
			leases := e.Admin.CoordinationV1().Leases(e.NS)
			if tc.before != nil {
				l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: e.Lease}, Spec: *tc.before}
				if _, err := leases.Create(ctx, l, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			tm := harness.DefaultTiming
			c, err := harness.NewLibraryCluster(e, 2, tm, harness.Generate(1, nil, 0, 2, tm.Lease, tm.Lease-tm.Renew, 0))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Stop() })
			if tc.edit != nil {
				first, err := c.WaitLeader(ctx, 500*time.Millisecond, time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				l, err := leases.Get(ctx, e.Lease, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				tc.edit(&l.Spec)
				e.Rec.Fault(first, "hand edit")
				if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			var leader string
			if tc.leads {
				if leader, err = c.WaitLeader(ctx, time.Second, time.Minute); err != nil {
					t.Fatal(err)
				}
			} else {
				time.Sleep(3 * tm.Lease)
				leader, _, _ = c.Leader()
			}
			expected := 0
			for _, p := range c.Stop() {
				if tc.runErr != "" && strings.Contains(p, tc.runErr) {
					expected++
					continue
				}
				t.Error(p)
			}
			if tc.runErr != "" && expected == 0 {
				t.Errorf("no Run returned %q", tc.runErr)
			}
			evs, err := history.Read(e.Record)
			if err != nil {
				t.Fatal(err)
			}
			rep := history.Check(evs, history.Options{})
			if !rep.Safe() {
				t.Fatalf("two leaders:\n%s", rep.Problems())
			}
			var tokens []int64
			for _, in := range rep.Intervals {
				if len(tokens) > 0 && in.Token <= tokens[len(tokens)-1] {
					t.Errorf("token %d after %v: fencing tokens must grow", in.Token, tokens)
				}
				tokens = append(tokens, in.Token)
			}
			t.Logf("leader %q; tokens of the tenures %v", leader, tokens)
			if tc.edit != nil && tc.before != nil && tc.before.LeaseTransitions != nil && len(tokens) < 2 {
				t.Errorf("tokens %v: the leader must step down when its token is edited away", tokens)
			}
			if !tc.leads && len(tokens) > 0 {
				t.Errorf("a candidate led with tokens %v although the next token does not fit", tokens)
			}
		})
	}
}

// TestAPIServerRejectsNegativeGarbage: garbage the fake API takes and
// kube-apiserver refuses, so that FuzzGarbageLease covers more than real
// clusters can hold.
func TestAPIServerRejectsNegativeGarbage(t *testing.T) {
	e := newEnv(t)
	leases := e.Admin.CoordinationV1().Leases(e.NS)
	for _, spec := range []coordinationv1.LeaseSpec{
		{HolderIdentity: ptr.To("x"), LeaseDurationSeconds: ptr.To[int32](-15)},
		{HolderIdentity: ptr.To("x"), LeaseDurationSeconds: ptr.To[int32](0)},
		{HolderIdentity: ptr.To("x"), LeaseTransitions: ptr.To[int32](-1)},
	} {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: e.Lease}, Spec: spec}
		_, err := leases.Create(context.Background(), l, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) {
			t.Errorf("create with %+v = %v, want 422 Invalid", spec, err)
			_ = leases.Delete(context.Background(), e.Lease, metav1.DeleteOptions{})
		}
	}
}
