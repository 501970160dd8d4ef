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
	"sort"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
)

// member is what this replica knows of one member Lease.
type member struct {
	lease *coordinationv1.Lease // nil: absent (deleted, or never seen)
	// observedAt is when, on this replica's clock, the Lease last changed
	// (its resourceVersion) or was first seen absent. Expiry counts from
	// it, never from a timestamp another host wrote.
	observedAt time.Time
	// checkAt: the Lease is not read again (see view.over) before this
	// time.
	checkAt time.Time
	// seenDuration is the leaseDurationSeconds of the last version seen.
	seenDuration time.Duration
}

// see records version l of the Lease, observed at now.
func (m *member) see(l *coordinationv1.Lease, now time.Time) {
	m.lease, m.observedAt = l, now
	m.checkAt = time.Time{}
	if l.Spec.LeaseDurationSeconds != nil {
		m.seenDuration = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
}

func (m *member) holder() string {
	if m.lease == nil || m.lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *m.lease.Spec.HolderIdentity
}

func (m *member) epoch() int64 {
	if m.lease == nil || m.lease.Spec.LeaseTransitions == nil {
		return 0
	}
	return int64(*m.lease.Spec.LeaseTransitions)
}

// duration is how long after observedAt (or a read recorded in view.over)
// the member expires: the Lease's own leaseDurationSeconds (the last seen,
// if it is absent now), never less than ours.
func (m *member) duration(ours time.Duration) time.Duration {
	return max(ours, m.seenDuration)
}

// status of an owner (identity, epoch) named in the table.
type status int

const (
	// live: the owner's member tenure is current and renewed.
	live status = iota
	// gone: the tenure is over and its work has stopped: its member Lease
	// was released in that epoch, or is in a newer epoch (the tenure's
	// Run ended before a newer one began).
	gone
	// expired: the member Lease has not changed for its lease duration on
	// this replica's clock and does not show the tenure over; fence it
	// (a write conditional on the version judged) before moving its shards.
	expired
	// waiting: unclear; nothing moves. The member Lease names someone
	// else in the tenure's epoch; or a read found the tenure over less
	// than a lease duration ago; or a read found the tenure current
	// though the view does not show it (the watch lags).
	waiting
	// unconfirmed: the member Lease is absent from this view (not seen
	// yet, or deleted) or in an older epoch than the table names, which a
	// view that lags the table also shows (a table read after a conflict
	// is newer than the watch); nothing moves. Read the Lease: see
	// view.over.
	unconfirmed
)

// String names a status, for logs and test messages.
func (s status) String() string {
	switch s {
	case live:
		return "live"
	case gone:
		return "gone"
	case expired:
		return "expired"
	case waiting:
		return "waiting"
	case unconfirmed:
		return "unconfirmed"
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// view is this replica's knowledge of its group, built from the shared
// watch and from the results of its own writes.
type view struct {
	group         string
	leaseDuration time.Duration

	mu      sync.Mutex
	synced  bool
	members map[string]*member // by Lease name
	// over records, per tenure named in a table, when (on this clock,
	// after the answer) a consistent read found its member Lease absent
	// or in an older epoch: the Lease was re-created (epochs grow
	// otherwise) after the table named the tenure, so the tenure cannot
	// renew it any more (renewals carry the resourceVersion) and its work
	// has stopped a lease duration after that answer. One entry per
	// tenure evicted so, that is per member Lease deleted by hand.
	over map[tenure]time.Time
	// lease is the newest assignment Lease known (see olderLocked) and
	// table its table; hasTable is false before one was read. If lease
	// cannot be parsed, tableErr says why and table is the last one read.
	lease    *coordinationv1.Lease
	table    Table
	hasTable bool
	tableErr error // the assignment Lease could not be parsed
	// deleted: the watch delivered the assignment Lease's deletion.
	deleted bool
	seen    bool // the watch has delivered the assignment Lease
}

func newView(group string, leaseDuration time.Duration) *view {
	return &view{group: group, leaseDuration: leaseDuration, members: map[string]*member{}, over: map[tenure]time.Time{}}
}

// refresh takes in the watch's state at now.
func (v *view) refresh(snap map[string]*coordinationv1.Lease, synced bool, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !synced {
		return
	}
	v.synced = true
	for name, l := range snap {
		switch l.Labels[LabelRole] {
		case RoleMember:
			m := v.members[name]
			if m == nil {
				m = &member{}
				v.members[name] = m
			}
			if m.lease == nil || m.lease.ResourceVersion != l.ResourceVersion {
				m.see(l, now)
			}
		case RoleAssignment:
			if name == AssignmentName(v.group) {
				v.seen = true
				v.adoptLocked(l)
			}
		}
	}
	for name, m := range v.members {
		if _, ok := snap[name]; !ok && m.lease != nil {
			m.lease, m.observedAt, m.checkAt = nil, now, time.Time{}
		}
	}
	if _, ok := snap[AssignmentName(v.group)]; !ok && v.seen {
		v.seen, v.deleted, v.tableErr = false, true, nil
	}
}

// adopt takes in an assignment Lease from the watch, or read or written
// by this replica, unless it is older than the one known: a GET answered
// before a write but processed after the watch delivered that write must
// not move the table backwards.
func (v *view) adopt(l *coordinationv1.Lease) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.adoptLocked(l)
}

// replace takes in an assignment Lease from a consistent read (after a
// conflict, or AlreadyExists): as adopt, it is ignored if older than the
// one known, since the watch may have delivered a newer one meanwhile.
func (v *view) replace(l *coordinationv1.Lease) { v.adopt(l) }

func (v *view) adoptLocked(l *coordinationv1.Lease) {
	t, err := TableOf(l)
	if v.lease != nil && !v.deleted && v.olderLocked(l, t, err == nil) {
		return // older than what we know: delivered or read late
	}
	// After a deletion anything is a new history, whatever its version.
	v.lease, v.deleted = l, false
	if err != nil {
		// The newest assignment cannot be read: no table holds until a
		// readable one replaces it (the last one read stays in table for
		// a re-creation).
		v.tableErr = err
		return
	}
	v.tableErr = nil
	v.table, v.hasTable = t, true
}

// olderLocked reports whether l (whose table is t, if parsed) is older
// than v.lease. resourceVersions are compared when both are integers (the
// etcd revisions of a real API server and of package fake grow with every
// write, a re-created Lease's included); else the table generations are
// (a Lease that cannot be parsed is taken as newer).
func (v *view) olderLocked(l *coordinationv1.Lease, t Table, parsed bool) bool {
	a, errA := strconv.ParseUint(l.ResourceVersion, 10, 64)
	b, errB := strconv.ParseUint(v.lease.ResourceVersion, 10, 64)
	if errA == nil && errB == nil {
		return a < b
	}
	return parsed && v.hasTable && v.tableErr == nil && t.Generation < v.table.Generation
}

// assignmentLease returns the newest assignment Lease seen, readable or
// not (nil if none).
func (v *view) assignmentLease() *coordinationv1.Lease {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.lease
}

// tableError returns why the newest assignment Lease seen cannot be read,
// or nil.
func (v *view) tableError() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.tableErr
}

// current returns the newest assignment known; ok is false if there is
// none, or if the newest assignment Lease seen cannot be read (see
// tableError): no replica runs or moves a shard on a table older than the
// newest it has seen.
func (v *view) current() (l *coordinationv1.Lease, t Table, ok bool, deleted bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.hasTable || v.tableErr != nil {
		return nil, Table{}, false, v.deleted
	}
	return v.lease, v.table.clone(), true, v.deleted
}

// ownerStatus judges the tenure (id, epoch) at now. It returns the member
// Lease judged (nil if absent) and, for waiting, when the judgement may
// change without a change of the Lease (zero: only when the view changes).
//
// Only a newer epoch, or a release in the same epoch, means gone; or a
// read recorded in over a lease duration ago. A member Lease this view has
// not seen (or saw deleted), or sees in an older epoch, is unconfirmed
// however long it stays so: a lagging watch must never let a live owner be
// judged gone. A Lease in the tenure's epoch that has not changed for its
// lease duration is expired: the fence, conditional on the version judged,
// fails if the owner renewed since.
func (v *view) ownerStatus(id string, epoch int64, now time.Time) (status, *coordinationv1.Lease, time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	m := v.members[MemberName(v.group, id)]
	if m == nil {
		m = &member{}
	}
	if m.lease != nil && m.epoch() > epoch {
		return gone, m.lease, time.Time{}
	}
	if at, ok := v.over[tenure{id, epoch}]; ok {
		expiry := at.Add(m.duration(v.leaseDuration))
		if !now.Before(expiry) {
			return gone, m.lease, expiry
		}
		return waiting, m.lease, expiry
	}
	if m.lease == nil || m.epoch() < epoch {
		if now.Before(m.checkAt) {
			return waiting, m.lease, m.checkAt
		}
		return unconfirmed, m.lease, time.Time{}
	}
	expiry := m.observedAt.Add(m.duration(v.leaseDuration))
	switch h := m.holder(); {
	case h == "":
		return gone, m.lease, expiry // released in the tenure's epoch
	case !now.Before(expiry):
		return expired, m.lease, expiry
	case h == id:
		return live, m.lease, expiry
	default:
		return waiting, m.lease, expiry
	}
}

// confirmOver records that a consistent read, answered before at, found
// the member Lease of the tenure absent or in an older epoch.
func (v *view) confirmOver(tn tenure, at time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.over[tn]; !ok {
		v.over[tn] = at
	}
}

// checkLater puts off the next read of a member Lease until at.
func (v *view) checkLater(id string, at time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	name := MemberName(v.group, id)
	m := v.members[name]
	if m == nil {
		m = &member{}
		v.members[name] = m
	}
	m.checkAt = at
}

// tenure is a live member: an identity in an epoch.
type tenure struct {
	id    string
	epoch int64
}

// live returns the live members at now, sorted by identity, and the
// earliest time one of them expires (zero if none).
func (v *view) live(now time.Time) ([]tenure, time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []tenure
	var next time.Time
	for name, m := range v.members {
		h := m.holder()
		if h == "" || MemberName(v.group, h) != name {
			continue
		}
		expiry := m.observedAt.Add(m.duration(v.leaseDuration))
		if !now.Before(expiry) {
			continue
		}
		if next.IsZero() || expiry.Before(next) {
			next = expiry
		}
		out = append(out, tenure{id: h, epoch: m.epoch()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out, next
}

// isSynced reports whether the watch has listed the group.
func (v *view) isSynced() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.synced
}
