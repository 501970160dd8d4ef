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
	"sort"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/elector-dev/elector/shard"
)

// typeSharded is the TYPE of a sharded group (package shard, or the
// sidecar's --shards) in list: one row that stands for the group's
// coordinator, assignment and member Leases, which are not elections of
// their own to an operator.
const typeSharded = "sharded"

// shardPart returns the group and role of a Lease of a sharded group:
// the labels elector.dev/shard-group and elector.dev/shard-role that
// package shard puts on every Lease of a group.
func shardPart(l *coordinationv1.Lease) (group, role string, ok bool) {
	group, role = l.Labels[shard.LabelGroup], l.Labels[shard.LabelRole]
	switch role {
	case shard.RoleMember, shard.RoleCoordinator, shard.RoleAssignment:
		return group, role, group != ""
	}
	return "", "", false
}

// groupInfo is what list shows of a sharded group beyond its coordinator
// election.
type groupInfo struct {
	// Shards is the group's number of shards and Generation the
	// assignment's, from the assignment Lease (0 before it exists).
	Shards     int   `json:"shards"`
	Generation int64 `json:"generation"`
	// Coordinator is the coordinator's identity ("" when none).
	Coordinator string `json:"coordinator"`
	// Members are the member Leases, by identity; Live counts the held
	// ones.
	Members []groupMember `json:"members"`
	Live    int           `json:"liveMembers"`
	// Leases names every Lease of the group.
	Leases []string `json:"leases"`
}

// groupMember is one member Lease of a group.
type groupMember struct {
	Identity string `json:"identity"`
	Lease    string `json:"lease"`
	State    string `json:"state"`
	// Epoch is the member tenure (the member Lease's leaseTransitions).
	Epoch int32 `json:"epoch"`
	// Shards are the shards the assignment gives this member.
	Shards []int `json:"shards"`
}

// groupViews replaces the Leases of sharded groups among leases by one
// view per group, judged at now; the other Leases get their own views.
func groupViews(leases []*coordinationv1.Lease, now time.Time) []view {
	type acc struct {
		coord   *coordinationv1.Lease
		assign  *coordinationv1.Lease
		members []*coordinationv1.Lease
		names   []string
	}
	groups := map[[2]string]*acc{}
	var out []view
	for _, l := range leases {
		g, role, ok := shardPart(l)
		if !ok {
			out = append(out, judge(l, now))
			continue
		}
		key := [2]string{l.Namespace, g}
		a := groups[key]
		if a == nil {
			a = &acc{}
			groups[key] = a
		}
		a.names = append(a.names, l.Name)
		switch role {
		case shard.RoleCoordinator:
			a.coord = l
		case shard.RoleAssignment:
			a.assign = l
		default:
			a.members = append(a.members, l)
		}
	}
	for key, a := range groups {
		v := view{Namespace: key[0], Name: key[1], State: stateReleased}
		if a.coord != nil {
			v = judge(a.coord, now)
			v.Name = key[1]
		}
		v.Type, v.CanHandOff, v.HandoffTo = typeSharded, false, nil
		info := &groupInfo{Coordinator: v.Holder, Members: []groupMember{}}
		owned := map[string][]int{}
		if a.assign != nil {
			if t, err := shard.TableOf(a.assign); err == nil {
				info.Shards, info.Generation = len(t.Shards), t.Generation
				for i, s := range t.Shards {
					if s.Owner != "" {
						owned[s.Owner] = append(owned[s.Owner], i)
					}
				}
			}
		}
		for _, l := range a.members {
			mv := judge(l, now)
			m := groupMember{Identity: mv.Holder, Lease: l.Name, State: mv.State, Epoch: mv.Token, Shards: []int{}}
			if mv.Holder != "" {
				m.Shards = append(m.Shards, owned[mv.Holder]...)
			}
			if mv.State == stateHeld {
				info.Live++
			}
			info.Members = append(info.Members, m)
		}
		sort.Slice(info.Members, func(i, j int) bool {
			if info.Members[i].Identity != info.Members[j].Identity {
				return info.Members[i].Identity < info.Members[j].Identity
			}
			return info.Members[i].Lease < info.Members[j].Lease
		})
		sort.Strings(a.names)
		info.Leases = a.names
		v.Group = info
		out = append(out, v)
	}
	return out
}

// primaryLease is the Lease that -o name prints for a view: the Lease
// itself, or a group's coordinator Lease (its election), else another of
// its Leases.
func primaryLease(v view) string {
	if v.Group == nil {
		return v.Name
	}
	for _, name := range v.Group.Leases {
		if name == shard.CoordinatorName(v.Name) {
			return name
		}
	}
	if len(v.Group.Leases) > 0 {
		return v.Group.Leases[0] // a group whose coordinator Lease is gone
	}
	return shard.CoordinatorName(v.Name)
}
