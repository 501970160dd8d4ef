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

package shard

import (
	"context"
	"log/slog"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testclock "k8s.io/utils/clock/testing"

	"github.com/elector-dev/elector/fake"
)

const (
	vNS    = "team-a"
	vGroup = "workers"
)

var vEpoch = time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)

// memberLease is the member Lease of id held by holder ("" released) in
// epoch.
func memberLease(id, holder string, epoch int32) *coordinationv1.Lease {
	d := int32(15)
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name: MemberName(vGroup, id), Namespace: vNS,
			Labels: map[string]string{LabelGroup: vGroup, LabelRole: RoleMember},
		},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseTransitions: &epoch, LeaseDurationSeconds: &d},
	}
}

func tableLease(t Table) *coordinationv1.Lease {
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
		Name: AssignmentName(vGroup), Namespace: vNS,
		Labels:      map[string]string{LabelGroup: vGroup, LabelRole: RoleAssignment},
		Annotations: map[string]string{AnnotationShards: t.encode()},
	}}
}

// history writes Leases to the fake API in order and keeps every version,
// so that a test can give a replica's view an older one.
type history struct {
	t  *testing.T
	cl interface {
		Create(context.Context, *coordinationv1.Lease, metav1.CreateOptions) (*coordinationv1.Lease, error)
		Update(context.Context, *coordinationv1.Lease, metav1.UpdateOptions) (*coordinationv1.Lease, error)
		Get(context.Context, string, metav1.GetOptions) (*coordinationv1.Lease, error)
	}
}

// put creates l, or updates it over its current version; it returns the
// version written.
func (h history) put(l *coordinationv1.Lease) *coordinationv1.Lease {
	h.t.Helper()
	ctx := context.Background()
	cur, err := h.cl.Get(ctx, l.Name, metav1.GetOptions{})
	var got *coordinationv1.Lease
	if err != nil {
		got, err = h.cl.Create(ctx, l, metav1.CreateOptions{})
	} else {
		l = l.DeepCopy()
		l.ResourceVersion = cur.ResourceVersion
		got, err = h.cl.Update(ctx, l, metav1.UpdateOptions{})
	}
	if err != nil {
		h.t.Fatalf("unable to write Lease %s: %v", l.Name, err)
	}
	return got
}

func (h history) table() Table {
	h.t.Helper()
	l, err := h.cl.Get(context.Background(), AssignmentName(vGroup), metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	tab, err := TableOf(l)
	if err != nil {
		h.t.Fatal(err)
	}
	return tab
}

// A coordinator whose watch lags: its view has member m in epoch 1
// (released, or still held), while the table it reads after a conflict,
// written by a replica with a fresher view, gives shard 0 to m's live
// tenure in epoch 2. It must leave shard 0 with (m, 2), now and after the
// lease duration (the fence of m's old version conflicts), and must not
// fence m's current Lease. Before the fix it reassigned shard 0 with the
// next token while m ran it (the outside review's double ownership).
func TestCoordinatorWithALaggingMemberViewLeavesALiveOwnerAlone(t *testing.T) {
	for _, tc := range []struct{ name, holder string }{{"released in epoch 1", ""}, {"held in epoch 1", "m"}} {
		t.Run(tc.name, func(t *testing.T) {
			leases := fake.NewLeases()
			h := history{t: t, cl: leases.Leases(vNS)}
			// The true history: m in epoch 1, (released,) m in epoch 2; the
			// table of generation 7, then 8 by a coordinator that saw
			// epoch 2.
			staleM := h.put(memberLease("m", "m", 1))
			if tc.holder == "" {
				staleM = h.put(memberLease("m", "", 1))
			}
			q := h.put(memberLease("q", "q", 4))
			staleTable := h.put(tableLease(Table{Format: tableFormat, Generation: 7, Shards: []Slot{
				{Owner: "m", Epoch: 1, Token: 3}, {Owner: "q", Epoch: 4, Token: 1}, {Token: 0},
			}}))
			h.put(memberLease("m", "m", 2))
			fresh := Table{Format: tableFormat, Generation: 8, Shards: []Slot{
				{Owner: "m", Epoch: 2, Token: 4}, {Owner: "q", Epoch: 4, Token: 1}, {Owner: "q", Epoch: 4, Token: 1},
			}}
			h.put(tableLease(fresh))

			clk := testclock.NewFakeClock(vEpoch)
			s, err := New(Config{
				Leases: leases.Leases(vNS), Namespace: vNS, Group: vGroup, Identity: "c", Shards: 3,
				Clock: clk, Logger: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			// The coordinator's view, from a watch that lags. (Its watch is
			// not started, so planRound's own refresh changes nothing.)
			s.view.refresh(map[string]*coordinationv1.Lease{
				staleM.Name: staleM, q.Name: q, staleTable.Name: staleTable,
			}, true, clk.Now())

			// Round 1: the stale table has an unowned shard, the write
			// conflicts, the table read is generation 8.
			if _, _, err := s.planRound(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := h.table(); got.Shards[0] != fresh.Shards[0] {
				t.Fatalf("after a conflict re-read, shard 0 moved from (m, 2) to %+v, generation %d, while m runs it", got.Shards[0], got.Generation)
			}
			if st, _, _ := s.view.ownerStatus("m", 2, clk.Now()); st != unconfirmed && st != waiting {
				t.Fatalf("owner (m, 2) seen only in epoch 1 is %v, want unconfirmed or waiting", st)
			}

			// Round 2, after m's lease duration on the coordinator's clock:
			// q renewed (seen), m's Lease still shows epoch 1 in the view. A
			// read finds (m, 2) current.
			clk.Step(16 * time.Second)
			q2 := h.put(memberLease("q", "q", 4))
			s.view.refresh(map[string]*coordinationv1.Lease{
				staleM.Name: staleM, q2.Name: q2, staleTable.Name: staleTable,
			}, true, clk.Now())
			if _, _, err := s.planRound(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := h.table()
			if got.Shards[0] != fresh.Shards[0] || got.Generation != fresh.Generation {
				t.Fatalf("a lease duration later, shard 0 is %+v in generation %d, want %+v in %d",
					got.Shards[0], got.Generation, fresh.Shards[0], fresh.Generation)
			}
			m, err := leases.Leases(vNS).Get(context.Background(), MemberName(vGroup, "m"), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if *m.Spec.HolderIdentity != "m" || *m.Spec.LeaseTransitions != 2 {
				t.Fatalf("m's live member Lease was changed to holder %q epoch %d", *m.Spec.HolderIdentity, *m.Spec.LeaseTransitions)
			}
		})
	}
}

// ownerStatus says gone only for a newer epoch or a release in the same
// epoch; a member Lease absent from the view or in an older epoch is
// unconfirmed, however long, until a read finds the tenure over (and gone
// a lease duration after that read); a Lease in the tenure's epoch that has
// not changed for its duration is expired (to be fenced).
func TestOwnerStatusOlderOrAbsentMemberIsNeverGone(t *testing.T) {
	now := vEpoch
	for _, tc := range []struct {
		name   string
		lease  *coordinationv1.Lease // nil: never seen
		after  time.Duration
		status status
	}{
		{"never seen", nil, 0, unconfirmed},
		{"never seen, an hour later", nil, time.Hour, unconfirmed},
		{"released in an older epoch", memberLease("m", "", 1), 0, unconfirmed},
		{"held in an older epoch", memberLease("m", "m", 1), 0, unconfirmed},
		{"held in an older epoch, an hour later", memberLease("m", "m", 1), time.Hour, unconfirmed},
		{"held by someone else", memberLease("m", "x", 2), 0, waiting},
		{"held by someone else, unchanged for the lease duration", memberLease("m", "x", 2), 15 * time.Second, expired},
		{"held, unchanged for the lease duration", memberLease("m", "m", 2), 15 * time.Second, expired},
		{"held", memberLease("m", "m", 2), 14 * time.Second, live},
		{"released in the same epoch", memberLease("m", "", 2), 0, gone},
		{"held in a newer epoch", memberLease("m", "m", 3), 0, gone},
		{"released in a newer epoch", memberLease("m", "", 3), 0, gone},
	} {
		v := newView(vGroup, 15*time.Second)
		snap := map[string]*coordinationv1.Lease{}
		if tc.lease != nil {
			tc.lease.ResourceVersion = "5"
			snap[tc.lease.Name] = tc.lease
		}
		v.refresh(snap, true, now)
		v.ownerStatus("m", 2, now) // judged once before: the clock runs from the first look
		if got, _, _ := v.ownerStatus("m", 2, now.Add(tc.after)); got != tc.status {
			t.Errorf("%s: owner (m, 2) is %v, want %v", tc.name, got, tc.status)
		}
	}
	// A member Lease seen, then absent from the watch (deleted by hand, or
	// the watch lags): unconfirmed, however long; a read that finds it
	// absent makes it gone a lease duration later.
	v := newView(vGroup, 15*time.Second)
	l := memberLease("m", "m", 2)
	l.ResourceVersion = "5"
	v.refresh(map[string]*coordinationv1.Lease{l.Name: l}, true, now)
	v.refresh(map[string]*coordinationv1.Lease{}, true, now.Add(time.Second))
	if got, _, _ := v.ownerStatus("m", 2, now.Add(time.Hour)); got != unconfirmed {
		t.Errorf("deleted member Lease: owner (m, 2) is %v an hour later, want unconfirmed", got)
	}
	v.confirmOver(tenure{"m", 2}, now.Add(time.Hour))
	if got, _, at := v.ownerStatus("m", 2, now.Add(time.Hour+14*time.Second)); got != waiting || !at.Equal(now.Add(time.Hour+15*time.Second)) {
		t.Errorf("confirmed absent 14s ago: owner (m, 2) is %v until %v, want waiting until 15s after the read", got, at)
	}
	if got, _, _ := v.ownerStatus("m", 2, now.Add(time.Hour+15*time.Second)); got != gone {
		t.Errorf("confirmed absent 15s ago: owner (m, 2) is %v, want gone", got)
	}
	if got, _, _ := v.ownerStatus("m", 3, now.Add(2*time.Hour)); got != unconfirmed {
		t.Errorf("a read that found tenure (m, 2) over decided (m, 3): %v, want unconfirmed", got)
	}
}

// A member Lease absent from the coordinator's view is read before its
// shards move: if the watch only lags, they never move while the Lease
// exists in the tenure's epoch; if it was deleted (or re-created in an
// older epoch by a restarted replica, which renews it), they move a lease
// duration after the read that found it so, with the next token. Before
// the fix a Lease the view had not seen counted as gone a lease duration
// after the first look, and a re-created one kept its shards forever.
func TestAbsentMemberLeaseIsReadBeforeItsShardsMove(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server *coordinationv1.Lease // m's Lease in the API (nil: none)
		inView bool                  // the coordinator's view has it
	}{
		{"the watch lags", memberLease("m", "m", 2), false},
		{"deleted", nil, false},
		{"re-created in epoch 0, not in the view", memberLease("m", "m", 0), false},
		{"re-created in epoch 0, renewed", memberLease("m", "m", 0), true},
	} {
		exists := tc.server != nil && *tc.server.Spec.LeaseTransitions == 2
		t.Run(tc.name, func(t *testing.T) {
			leases := fake.NewLeases()
			h := history{t: t, cl: leases.Leases(vNS)}
			var m *coordinationv1.Lease
			if tc.server != nil {
				m = h.put(tc.server)
			}
			view := func(q, tl *coordinationv1.Lease) map[string]*coordinationv1.Lease {
				snap := map[string]*coordinationv1.Lease{q.Name: q, tl.Name: tl}
				if tc.inView {
					m = h.put(tc.server) // m renews
					snap[m.Name] = m
				}
				return snap
			}
			q := h.put(memberLease("q", "q", 4))
			tl := h.put(tableLease(Table{Format: tableFormat, Generation: 1, Shards: []Slot{
				{Owner: "m", Epoch: 2, Token: 4}, {Owner: "q", Epoch: 4, Token: 1},
			}}))
			clk := testclock.NewFakeClock(vEpoch)
			s, err := New(Config{
				Leases: leases.Leases(vNS), Namespace: vNS, Group: vGroup, Identity: "c", Shards: 2,
				Clock: clk, Logger: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			s.view.refresh(view(q, tl), true, clk.Now())
			for round := range 4 {
				if _, _, err := s.planRound(context.Background()); err != nil {
					t.Fatal(err)
				}
				got := h.table().Shards[0]
				switch {
				case exists && got.Owner != "m":
					t.Fatalf("round %d (%v after the first): the shard of (m, 2), whose Lease exists, moved to %+v", round, clk.Since(vEpoch), got)
				case !exists && round < 2 && got.Owner != "m":
					t.Fatalf("round %d (%v after the read): the shard of (m, 2) moved to %+v before the lease duration", round, clk.Since(vEpoch), got)
				case !exists && round >= 2 && (got.Owner == "m" && got.Epoch == 2 || got.Token != 5):
					t.Fatalf("round %d (%v after the read that found m's Lease absent or re-created): shard 0 is %+v, want a live member with token 5", round, clk.Since(vEpoch), got)
				}
				clk.Step(8 * time.Second)
				q = h.put(memberLease("q", "q", 4)) // q renews
				s.view.refresh(view(q, tl), true, clk.Now())
			}
		})
	}
}

// The table never moves backwards: a consistent read answered before a
// newer write, processed after the watch delivered that write, is
// ignored; a Lease re-created after a deletion is taken whatever its
// generation.
func TestViewTableNeverMovesBackwards(t *testing.T) {
	now := vEpoch
	at := func(gen int64, rv string) *coordinationv1.Lease {
		l := tableLease(Table{Format: tableFormat, Generation: gen, Shards: []Slot{{Owner: "a", Epoch: 1, Token: gen}}})
		l.ResourceVersion = rv
		return l
	}
	gen := func(v *view) int64 {
		_, tab, ok, _ := v.current()
		if !ok {
			t.Fatal("no table")
		}
		return tab.Generation
	}

	v := newView(vGroup, 15*time.Second)
	v.refresh(map[string]*coordinationv1.Lease{AssignmentName(vGroup): at(9, "20")}, true, now)
	v.replace(at(8, "14")) // a GET answered before generation 9 was written
	if g := gen(v); g != 9 {
		t.Fatalf("an older read moved the table back to generation %d, want 9", g)
	}
	v.adopt(at(8, "14"))
	if g := gen(v); g != 9 {
		t.Fatalf("an older event moved the table back to generation %d, want 9", g)
	}
	v.replace(at(10, "25"))
	if g := gen(v); g != 10 {
		t.Fatalf("a newer read was ignored: generation %d, want 10", g)
	}

	// Deleted (the watch saw it), then re-created with a fresh table: a
	// new history.
	v.refresh(map[string]*coordinationv1.Lease{}, true, now)
	v.replace(at(0, "31"))
	if g := gen(v); g != 0 {
		t.Fatalf("the re-created table was ignored: generation %d, want 0", g)
	}
	// Re-created again while the watch missed the deletion: its
	// resourceVersion is newer, so it is taken.
	v.refresh(map[string]*coordinationv1.Lease{AssignmentName(vGroup): at(0, "40")}, true, now)
	v.replace(at(3, "35"))
	if _, tab, _, _ := v.current(); tab.Generation != 0 || tab.Shards[0].Token != 0 {
		t.Fatalf("table after a re-creation the watch missed: %+v, want generation 0 from resourceVersion 40", tab)
	}
}

// An assignment Lease that cannot be parsed hides the older table: no
// shard runs or moves on it until a readable version replaces it.
func TestViewUnreadableTableHidesTheOlderOne(t *testing.T) {
	v := newView(vGroup, 15*time.Second)
	good := tableLease(Table{Format: tableFormat, Generation: 3, Shards: []Slot{{Owner: "a", Epoch: 1, Token: 2}}})
	good.ResourceVersion = "10"
	v.refresh(map[string]*coordinationv1.Lease{good.Name: good}, true, vEpoch)
	bad := good.DeepCopy()
	bad.ResourceVersion = "12"
	bad.Annotations[AnnotationShards] = `{"format":2,"generation":4}`
	v.adopt(bad)
	if _, _, ok, _ := v.current(); ok || v.tableError() == nil {
		t.Fatalf("after an unreadable version, current ok=%v and tableError %v; want no table and an error", ok, v.tableError())
	}
	v.adopt(good) // older: ignored
	if v.tableError() == nil {
		t.Fatal("an older readable version hid the newer unreadable one")
	}
	fixed := good.DeepCopy()
	fixed.ResourceVersion = "13"
	v.adopt(fixed)
	if _, tab, ok, _ := v.current(); !ok || v.tableError() != nil || tab.Generation != 3 {
		t.Fatalf("after a fix: ok=%v, error %v, generation %d; want the fixed table", ok, v.tableError(), tab.Generation)
	}
}
