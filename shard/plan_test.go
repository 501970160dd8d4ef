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
	"fmt"
	"math/rand/v2"
	"testing"
)

// plan balances any table to ⌊K/N⌋/⌈K/N⌉ in one round and moves only the
// surplus: the shards above the quota of their owner, and the orphans.
func TestPlanBalancesAndMovesOnlyTheSurplus(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 2000 {
		k := 1 + rng.IntN(64)
		n := 1 + rng.IntN(10)
		var live []tenure
		for i := range n {
			live = append(live, tenure{fmt.Sprintf("m%02d", i), int64(rng.IntN(3))})
		}
		tab := Table{Format: tableFormat, Shards: make([]Slot, k)}
		for s := range tab.Shards {
			switch rng.IntN(4) {
			case 0: // unowned
			case 1: // a gone owner
				tab.Shards[s] = Slot{Owner: "dead", Epoch: 1, Token: int64(rng.IntN(5))}
			default:
				m := live[rng.IntN(n)]
				tab.Shards[s] = Slot{Owner: m.id, Epoch: m.epoch, Token: int64(rng.IntN(5))}
			}
		}
		isGone := func(id string, _ int64) bool { return id == "dead" }
		got, mv := plan(tab, live, isGone, true)

		// Apply the handoffs as the owners would, then count.
		load := map[string]int{}
		moved := 0
		for s, sl := range got.Shards {
			old := tab.Shards[s]
			if sl.HandoffTo != "" {
				sl.Owner = sl.HandoffTo
			}
			if sl.Owner == "" {
				t.Fatalf("round %d: shard %d left unowned with %d live members", round, s, n)
			}
			if sl.Owner != old.Owner {
				moved++
				if sl.HandoffTo == "" && sl.Token != old.Token+1 {
					t.Fatalf("round %d: shard %d assigned with token %d after %d", round, s, sl.Token, old.Token)
				}
			}
			load[sl.Owner]++
		}
		q := k / n
		for _, m := range live {
			if load[m.id] < q || load[m.id] > q+1 {
				t.Fatalf("round %d: K=%d N=%d: %s owns %d, want %d or %d", round, k, n, m.id, load[m.id], q, q+1)
			}
		}
		// The minimum: orphans, plus what live owners hold above the
		// quota they get (the larger quotas go to those who own most).
		before := map[string]int{}
		orphans := 0
		for _, sl := range tab.Shards {
			if sl.Owner == "" || sl.Owner == "dead" {
				orphans++
			} else {
				before[sl.Owner]++
			}
		}
		counts := []int{}
		for _, m := range live {
			counts = append(counts, before[m.id])
		}
		// sort descending
		for i := range counts {
			for j := i + 1; j < len(counts); j++ {
				if counts[j] > counts[i] {
					counts[i], counts[j] = counts[j], counts[i]
				}
			}
		}
		minimum := orphans
		for i, c := range counts {
			quota := q
			if i < k%n {
				quota++
			}
			minimum += max(0, c-quota)
		}
		if moved != minimum || mv.assigned+mv.handoffs != minimum {
			t.Fatalf("round %d: K=%d N=%d: moved %d shards (plan says %d+%d), the minimum is %d", round, k, n, moved, mv.assigned, mv.handoffs, minimum)
		}
		// A balanced table is left alone.
		if _, again := plan(applyHandoffs(got), live, isGone, true); again.any() {
			t.Fatalf("round %d: a balanced table was changed again: %+v", round, again)
		}
	}
}

func applyHandoffs(t Table) Table {
	t = t.clone()
	for i := range t.Shards {
		if sl := &t.Shards[i]; sl.HandoffTo != "" {
			sl.Owner, sl.Epoch, sl.Token, sl.HandoffTo, sl.HandoffEpoch = sl.HandoffTo, sl.HandoffEpoch, sl.Token+1, "", 0
		}
	}
	return t
}
