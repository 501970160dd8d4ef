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

package sim

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// history records tenures (a leader function, or one shard's function,
// from its start to its return) in virtual time and checks them as they
// happen:
//
//   - no two tenures of one key (the election, or one shard) overlap at
//     any instant: a start while another tenure of the key is active is
//     a violation;
//   - tokens strictly increase per key, in the order tenures start;
//
// except where doc.go says the guarantee does not hold: a candidate that
// never received an incarnation of the Lease (one object, one UID) that
// was deleted by hand may overlap that incarnation's leader; and after a
// deletion of the Lease carrying the highest token, a candidate's token
// need only exceed every token it had received (doc.go, Deleting the
// Lease).
type history struct {
	sim *Sim

	mu        sync.Mutex
	active    map[string][]*tenureRec
	lastToken map[string]int64
	// lastTokenUID is the incarnation of the Lease that carried
	// lastToken.
	lastTokenUID map[string]types.UID
	lastStart    map[string]*tenureRec
	deletions    map[string][]deletion
	excused      bool // shard safety is not checked after a hand edit of the table
}

// deletion is a hand deletion of one incarnation of a Lease.
type deletion struct {
	at  time.Duration
	uid types.UID
}

type tenureRec struct {
	inst  *instance
	key   string
	token int64     // -1: unknown (client-go)
	uid   types.UID // the incarnation of the Lease it holds (elections of library candidates)
	start time.Duration
}

func newHistory(s *Sim) *history {
	return &history{
		sim:          s,
		active:       map[string][]*tenureRec{},
		lastToken:    map[string]int64{},
		lastTokenUID: map[string]types.UID{},
		lastStart:    map[string]*tenureRec{},
		deletions:    map[string][]deletion{},
	}
}

func (h *history) deleted(name string, uid types.UID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deletions[name] = append(h.deletions[name], deletion{at: h.sim.now(), uid: uid})
}

// excusedByDeletion reports whether a tenure of inst that starts now may
// overlap o: the incarnation of the Lease that o holds was deleted by
// hand, and inst had not received it when it sent the acquisition of its
// tenure. doc.go promises a wait only from a candidate that saw the Lease
// before it was deleted; that incarnation is what it must have seen, and
// before it chose to write. A candidate that saw an earlier incarnation,
// saw it deleted, and was waiting that out while another candidate
// re-created the Lease and the operator deleted it again, all unseen (its
// watch lagged, or failed and read the Lease absent again), cannot know
// of the second holder: the old check, "saw any incarnation before a
// deletion since o started", counted it as a violation; it also counted a
// sight that came after the candidate had sent its create, and missed a
// deletion between o's acquisition and o's start.
func (h *history) excusedByDeletion(key string, inst *instance, o *tenureRec) bool {
	return o.uid != "" && h.deletedIncarnation(key, o.uid) && !inst.termOf(key).knew.seen[o.uid]
}

// deletedIncarnation reports whether the incarnation uid of the Lease key
// was deleted.
func (h *history) deletedIncarnation(key string, uid types.UID) bool {
	for _, d := range h.deletions[key] {
		if d.uid == uid {
			return true
		}
	}
	return false
}

// start records that inst began a tenure of key with token. It returns
// the record to pass to end, or nil if inst is dead (a crashed process
// does nothing).
func (h *history) start(inst *instance, key string, token int64) *tenureRec {
	if inst.dead() {
		return nil
	}
	s := h.sim
	now := s.now()
	s.trace(inst, "START %s token=%d", key, token)
	h.mu.Lock()
	defer h.mu.Unlock()
	shard := key != election
	for _, o := range h.active[key] {
		if shard && h.excused || !shard && h.excusedByDeletion(key, inst, o) {
			s.trace(inst, "overlap with %s excused (see doc.go, Deleting the Lease)", o.inst.name())
			continue
		}
		s.violate("two tenures of %s at once: %s (token %d, since %v) and %s (token %d)",
			key, o.inst.name(), o.token, o.start.Round(time.Microsecond), inst.name(), token)
	}
	if token >= 0 {
		// A shard's owner that restarts the shard's function (it
		// returned on its own) in the same tenure keeps its token.
		same := shard && h.lastStart[key] != nil && h.lastStart[key].inst == inst
		last, ok := h.lastToken[key]
		bad := ok && (token < last || token == last && !same)
		restart := false
		switch {
		case shard && h.excused:
			bad = false
		case !shard && bad && h.deletedIncarnation(key, h.lastTokenUID[key]):
			// The Lease that carried the highest token was deleted.
			// doc.go (Deleting the Lease) promises a token above
			// every one this candidate saw, no more: a candidate that
			// never saw the deleted incarnation, or whose view missed
			// its last acquisitions (its watch lagged, or failed and
			// then read the Lease absent), cannot know the highest
			// token. The old check excused only a candidate that saw
			// no incarnation before the deletion, and flagged the
			// second kind.
			bad, restart = false, true
			// The target of a planned handoff did not choose its
			// token: the previous holder did (its own token + 1).
			if t := inst.termOf(key); !t.handed && t.knew.ok && token <= int64(t.knew.max) {
				s.violate("token of %s did not increase: %s started with %d after the Lease was deleted, though it had seen token %d",
					key, inst.name(), token, t.knew.max)
			}
		}
		if bad {
			prev := "?"
			if p := h.lastStart[key]; p != nil {
				prev = p.inst.name()
			}
			s.violate("token of %s did not increase: %s started with %d after %d (%s)", key, inst.name(), token, last, prev)
		}
		if restart || !ok || token > last {
			h.lastToken[key] = token
			if !shard {
				h.lastTokenUID[key] = inst.termOf(key).uid // as r.uid below
			}
		}
	}
	r := &tenureRec{inst: inst, key: key, token: token, start: now}
	if !shard {
		r.uid = inst.termOf(key).uid
	}
	h.lastStart[key] = r
	h.active[key] = append(h.active[key], r)
	inst.began(r)
	return r
}

// end records that a tenure ended (its function returned, or its process
// died).
func (h *history) end(r *tenureRec) {
	if r == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	rs := h.active[r.key]
	for i, o := range rs {
		if o == r {
			h.active[r.key] = append(rs[:i:i], rs[i+1:]...)
			h.sim.trace(r.inst, "END %s token=%d", r.key, r.token)
			r.inst.ended(r)
			return
		}
	}
}

// leading returns the instances with an active tenure of key.
func (h *history) leading(key string) []*instance {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*instance
	for _, r := range h.active[key] {
		out = append(out, r.inst)
	}
	return out
}

func (h *history) excuse() {
	h.mu.Lock()
	h.excused = true
	h.mu.Unlock()
}
