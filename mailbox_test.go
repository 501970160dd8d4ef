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
	"errors"
	"log/slog"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/elector-dev/elector/fake"
)

func mailboxLease(uid, rv, holder string, transitions int32) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "lock", Namespace: "ns", UID: types.UID(uid), ResourceVersion: rv},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: &holder, LeaseTransitions: &transitions,
			LeaseDurationSeconds: ptr(int32(DefaultLeaseDuration / time.Second)),
		},
	}
}

// TestMailboxKeepsWhatANewerStateOrAnErrorWouldHide: the mailbox may drop
// an older state of the same Lease object, never a Lease behind its
// deletion or re-creation, and never a state behind an error.
func TestMailboxKeepsWhatANewerStateOrAnErrorWouldHide(t *testing.T) {
	a1, a2 := mailboxLease("a", "1", "old", 5), mailboxLease("a", "2", "old", 5)
	b := mailboxLease("b", "7", "new", 0)
	failed := apierrors.NewServiceUnavailable("etcd leader changed")
	describe := func(obs []observation) []string {
		var out []string
		for _, o := range obs {
			switch {
			case o.err != nil:
				out = append(out, "error")
			case o.lease == nil:
				out = append(out, "absent")
			default:
				out = append(out, string(o.lease.UID)+"@"+o.lease.ResourceVersion)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		put  []observation
		want []string
	}{
		{"a newer state of the same Lease replaces the older", []observation{{lease: a1}, {lease: a2}}, []string{"a@2"}},
		{"an error does not hide a Lease", []observation{{lease: a1}, {err: failed}}, []string{"a@1", "error"}},
		{"a deletion does not hide the Lease", []observation{{lease: a1}, {lease: nil}}, []string{"a@1", "absent"}},
		{"a re-creation does not hide the deletion", []observation{{lease: a2}, {lease: nil}, {lease: b}}, []string{"a@2", "absent", "b@7"}},
		{"a state supersedes an earlier error", []observation{{err: failed}, {lease: a1}}, []string{"a@1"}},
		{"absent twice is one state", []observation{{lease: nil}, {err: failed}, {lease: nil}}, []string{"absent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mb := newMailbox()
			for _, o := range tc.put {
				mb.put(o)
			}
			got := describe(mb.take())
			if len(got) != len(tc.want) {
				t.Fatalf("took %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("took %v, want %v", got, tc.want)
				}
			}
			if rest := mb.take(); len(rest) != 0 {
				t.Fatalf("a second take returned %v, want nothing", describe(rest))
			}
		})
	}
}

// TestFollowerWhoseWatchFailedRightAfterReadingTheLeaseWaitsOutItsDeletion
// is the simulator's seed 453457495215 (test/sim/testdata/corpus.txt): a
// follower's watch read the Lease (held by "old", token 5), and its next
// request failed before the election loop took the Lease from the
// mailbox; the Lease was then deleted by hand. The follower knew of the
// Lease, so it must wait out old's lease from the deletion and carry the
// token on (doc.go, Deleting the Lease). When the error replaced the Lease
// in the mailbox, the follower believed the Lease had never existed and
// created it at once with token 0, over old.
func TestFollowerWhoseWatchFailedRightAfterReadingTheLeaseWaitsOutItsDeletion(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	e, err := New(Config{Leases: fake.NewLeases().Leases("ns"), Namespace: "ns", Name: "lock", Identity: "me", Clock: clk, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("unable to create the elector: %v", err)
	}
	r := &round{e: e, mb: newMailbox()}
	defer r.stopTimers()

	r.mb.put(observation{lease: mailboxLease("a", "3", "old", 5)}) // the watch's GET
	r.mb.put(observation{err: errors.New("unable to watch Leases: etcd leader changed")})
	if err := r.takeObservations(); err != nil {
		t.Fatalf("takeObservations: %v", err)
	}
	clk.Step(3 * time.Second)
	r.mb.put(observation{}) // the watch's next GET: 404, deleted by hand
	if err := r.takeObservations(); err != nil {
		t.Fatalf("takeObservations: %v", err)
	}

	if wait, ok := r.mayAcquire(); ok || wait < DefaultLeaseDuration {
		t.Fatalf("after the deletion: may acquire %v, wait %v; want to wait out old's lease (%v) from the deletion", ok, wait, DefaultLeaseDuration)
	}
	if !r.seen || r.maxToken != 5 {
		t.Fatalf("after the deletion: seen %v, highest token %d; want true, 5 (a re-creation must carry token 6)", r.seen, r.maxToken)
	}
}
