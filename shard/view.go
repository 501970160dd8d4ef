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

// duration is how long after observedAt the member expires: the Lease's
// own leaseDurationSeconds, never less than ours.
func (m *member) duration(ours time.Duration) time.Duration {
	if m.lease != nil && m.lease.Spec.LeaseDurationSeconds != nil {
		return max(ours, time.Duration(*m.lease.Spec.LeaseDurationSeconds)*time.Second)
	}
	return ours
}

// status of an owner (identity, epoch) named in the table.
type status int

const (
	// live: the owner's member tenure is current and renewed.
	live status = iota
	// gone: the tenure is over and its work has stopped (its member Lease
	// was released, fenced, or taken in a newer tenure).
	gone
	// expired: the tenure's member Lease has not changed for its lease
	// duration on this replica's clock; fence it before moving its shards.
	expired
	// waiting: unclear (the Lease is absent or names someone else); wait
	// for the lease duration before treating the owner as gone.
	waiting
)

// view is this replica's knowledge of its group, built from the shared
// watch and from the results of its own writes.
type view struct {
	group         string
	leaseDuration time.Duration

	mu      sync.Mutex
	synced  bool
	members map[string]*member // by Lease name
	// table is the newest assignment known (the highest Generation) and
	// lease the Lease it came from; hasTable is false before it exists.
	lease    *coordinationv1.Lease
	table    Table
	hasTable bool
	tableErr error // the assignment Lease could not be parsed
	// deleted: the watch delivered the assignment Lease's deletion.
	deleted bool
	seen    bool // the watch has delivered the assignment Lease
}

func newView(group string, leaseDuration time.Duration) *view {
	return &view{group: group, leaseDuration: leaseDuration, members: map[string]*member{}}
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
				v.members[name] = &member{lease: l, observedAt: now}
				continue
			}
			if m.lease == nil || m.lease.ResourceVersion != l.ResourceVersion {
				m.lease, m.observedAt = l, now
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
			m.lease, m.observedAt = nil, now
		}
	}
	if _, ok := snap[AssignmentName(v.group)]; !ok && v.seen {
		v.seen, v.deleted = false, true
	}
}

// adopt takes in an assignment Lease read or written by this replica.
func (v *view) adopt(l *coordinationv1.Lease) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.adoptLocked(l)
}

func (v *view) adoptLocked(l *coordinationv1.Lease) {
	t, err := TableOf(l)
	if err != nil {
		v.tableErr = err
		return
	}
	v.tableErr = nil
	if v.deleted {
		// Re-created: a new history, whatever its generation.
		v.lease, v.table, v.hasTable, v.deleted = l, t, true, false
		return
	}
	if v.hasTable && t.Generation < v.table.Generation {
		return // older than what we know: delivered late
	}
	if v.hasTable && t.Generation == v.table.Generation && !newerVersion(l.ResourceVersion, v.lease.ResourceVersion) {
		return
	}
	v.lease, v.table, v.hasTable = l, t, true
}

// replace takes in an assignment Lease from a consistent read: it is the
// current state, whatever the generation.
func (v *view) replace(l *coordinationv1.Lease) {
	v.mu.Lock()
	defer v.mu.Unlock()
	t, err := TableOf(l)
	if err != nil {
		v.tableErr = err
		return
	}
	v.tableErr = nil
	v.lease, v.table, v.hasTable, v.deleted = l, t, true, false
}

// newerVersion reports whether resourceVersion a is not older than b, for
// two versions of one object with the same table generation (a table
// re-written without change, such as after a label edit). Versions that
// are not integers are taken as newer.
func newerVersion(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	return errA != nil || errB != nil || x >= y
}

// current returns the newest assignment known.
func (v *view) current() (l *coordinationv1.Lease, t Table, ok bool, deleted bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.hasTable {
		return nil, Table{}, false, v.deleted
	}
	return v.lease, v.table.clone(), true, v.deleted
}

// ownerStatus judges the tenure (id, epoch) at now. A member Lease this
// view has never seen counts as absent from now on.
func (v *view) ownerStatus(id string, epoch int64, now time.Time) (status, *coordinationv1.Lease, time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	name := MemberName(v.group, id)
	m := v.members[name]
	if m == nil {
		m = &member{observedAt: now}
		v.members[name] = m
	}
	expiry := m.observedAt.Add(m.duration(v.leaseDuration))
	switch h := m.holder(); {
	case m.lease == nil:
		if !now.Before(expiry) {
			return gone, nil, expiry
		}
		return waiting, nil, expiry
	case h == "":
		return gone, m.lease, expiry
	case h == id && m.epoch() != epoch:
		return gone, m.lease, expiry
	case !now.Before(expiry):
		return expired, m.lease, expiry
	case h == id:
		return live, m.lease, expiry
	default:
		return waiting, m.lease, expiry
	}
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
