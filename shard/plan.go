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

import "sort"

// moves counts the changes one planning round makes.
type moves struct {
	assigned int // unowned or orphaned shards given to a live member
	handoffs int // shards a live owner is asked to hand on
	cleared  int // handoffs cancelled because their target is not live
	// forgotten counts leaving members whose tenure is over.
	forgotten int
}

func (m moves) any() bool { return m.assigned+m.handoffs+m.cleared+m.forgotten > 0 }

// plan balances t over the live members: it returns the table to write
// and what it changed. Balance: with N live members, q = K/N and r = K
// mod N, the r members that own the most (ties: the lower identity) may
// keep q+1 shards and the others q. Only the surplus moves: over-quota
// members hand their highest-numbered shards to under-quota members;
// shards that are unowned or whose owner is gone (its tenure is over and
// its work stopped) are assigned directly, with the next token. Shards of
// an owner that is neither live nor gone (expired but not fenced yet, or
// unclear: its member Lease not seen, or seen only in an older epoch than
// the table names, which is what a view that lags the table shows) are
// left alone: isGone must report true only for a tenure that is over. It
// is deterministic and sticky.
//
// With handoffs false it only assigns orphans and clears handoffs whose
// target left (the coordinator waits for the membership to settle before
// it moves shards between live members).
func plan(t Table, liveMembers []tenure, isGone func(id string, epoch int64) bool, handoffs bool) (Table, moves) {
	t = t.clone()
	var mv moves
	// Members that are leaving get nothing; entries of tenures that are
	// over are dropped.
	for id, epoch := range t.Leaving {
		if isGone(id, epoch) {
			delete(t.Leaving, id)
			mv.forgotten++
		}
	}
	var staying []tenure
	for _, m := range liveMembers {
		if epoch, ok := t.Leaving[m.id]; !ok || epoch != m.epoch {
			staying = append(staying, m)
		}
	}
	liveMembers = staying
	n := len(liveMembers)
	if n == 0 {
		return t, mv
	}
	isLive := make(map[tenure]bool, n)
	for _, m := range liveMembers {
		isLive[m] = true
	}
	load := make(map[string]int, n)
	owned := make(map[string][]int, n) // shards a live member owns with no handoff pending
	var orphans []int
	for s := range t.Shards {
		sl := &t.Shards[s]
		ownerLive := sl.Owner != "" && isLive[tenure{sl.Owner, sl.Epoch}]
		orphan := !ownerLive && (sl.Owner == "" || isGone(sl.Owner, sl.Epoch))
		if sl.HandoffTo != "" {
			switch {
			case ownerLive && isLive[tenure{sl.HandoffTo, sl.HandoffEpoch}]:
				load[sl.HandoffTo]++
				continue
			case ownerLive:
				mv.cleared++ // the target left: the owner keeps the shard
			case !orphan:
				continue // the owner is neither live nor gone: wait
			}
			sl.HandoffTo, sl.HandoffEpoch = "", 0
		}
		switch {
		case orphan:
			orphans = append(orphans, s)
		case ownerLive:
			load[sl.Owner]++
			owned[sl.Owner] = append(owned[sl.Owner], s)
		}
	}

	// Quotas: the members that own the most keep the larger quota.
	order := append([]tenure(nil), liveMembers...)
	sort.SliceStable(order, func(i, j int) bool {
		if load[order[i].id] != load[order[j].id] {
			return load[order[i].id] > load[order[j].id]
		}
		return order[i].id < order[j].id
	})
	k := len(t.Shards)
	q, r := k/n, k%n
	quota := make(map[string]int, n)
	for i, m := range order {
		quota[m.id] = q
		if i < r {
			quota[m.id] = q + 1
		}
	}

	// Surplus: the highest-numbered shards of over-quota members.
	var surplus []int
	for _, m := range order {
		extra := min(load[m.id]-quota[m.id], len(owned[m.id]))
		if extra <= 0 {
			continue
		}
		mine := owned[m.id]
		surplus = append(surplus, mine[len(mine)-extra:]...)
	}
	sort.Ints(surplus)

	// Receivers, one slot per missing shard, dealt round-robin so that
	// shards spread over the under-quota members.
	var receivers []tenure
	under := append([]tenure(nil), liveMembers...)
	sort.SliceStable(under, func(i, j int) bool {
		if load[under[i].id] != load[under[j].id] {
			return load[under[i].id] < load[under[j].id]
		}
		return under[i].id < under[j].id
	})
	for more := true; more; {
		more = false
		for _, m := range under {
			if load[m.id] < quota[m.id] {
				receivers = append(receivers, m)
				load[m.id]++
				more = true
			}
		}
	}

	for _, s := range orphans {
		if len(receivers) == 0 {
			break
		}
		to := receivers[0]
		receivers = receivers[1:]
		sl := &t.Shards[s]
		sl.Owner, sl.Epoch, sl.Token = to.id, to.epoch, sl.Token+1
		mv.assigned++
	}
	for _, s := range surplus {
		if len(receivers) == 0 || !handoffs {
			break
		}
		to := receivers[0]
		receivers = receivers[1:]
		sl := &t.Shards[s]
		sl.HandoffTo, sl.HandoffEpoch = to.id, to.epoch
		mv.handoffs++
	}
	return t, mv
}
