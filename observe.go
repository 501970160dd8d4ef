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
	"context"
	"time"
)

type subscriber struct{ ch chan Leader }

// send delivers v, replacing an undelivered older value: a slow reader
// always gets the newest view and never blocks the election. Callers hold
// e.mu.
func (s *subscriber) send(v Leader) {
	select {
	case s.ch <- v:
		return
	default:
	}
	select {
	case <-s.ch:
	default:
	}
	s.ch <- v
}

// Subscribe returns a channel that receives the current view at once and
// then every change of leader identity, token, Self or pending handoff
// request. Renewals alone are not changes. A slow reader sees only the newest view. The channel is
// closed when ctx ends.
func (e *Elector) Subscribe(ctx context.Context) <-chan Leader {
	s := &subscriber{ch: make(chan Leader, 1)}
	e.mu.Lock()
	e.subs[s] = struct{}{}
	s.send(e.view)
	e.mu.Unlock()
	context.AfterFunc(ctx, func() {
		e.mu.Lock()
		delete(e.subs, s)
		close(s.ch)
		e.mu.Unlock()
	})
	return s.ch
}

// publish updates the view from the latest record and notifies
// subscribers when it changed in a way that matters.
func (e *Elector) publish(rec record, expiry time.Time, req HandoffRequest, pending bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := Leader{
		Identity: rec.holder,
		Self:     e.leading,
		Since:    rec.acquireTime,
		Token:    Token(rec.transitions),
		Expiry:   expiry,
	}
	if pending {
		v.Handoff = &req
	}
	if rec.holder == "" {
		v.Since, v.Expiry = time.Time{}, time.Time{}
	}
	e.setViewLocked(v)
}

// beginTenure records that this candidate leads from its write at
// lastWrite, and publishes the record of the new tenure together with
// Self, in one step: observers never see Self with the token of an
// earlier tenure, nor this candidate holding without leading.
func (e *Elector) beginTenure(rec record, lastWrite time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.leading, e.lastRenew = true, lastWrite
	e.metrics.setLeader(true, lastWrite)
	e.setViewLocked(Leader{
		Identity: rec.holder,
		Self:     true,
		Since:    rec.acquireTime,
		Token:    Token(rec.transitions),
		Expiry:   lastWrite.Add(e.cfg.LeaseDuration),
	})
}

// setLeading records a renewal (leading, with the time of the write) or
// the end of the tenure.
func (e *Elector) setLeading(leading bool, lastRenew time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.leading = leading
	if leading {
		e.lastRenew = lastRenew
	}
	e.metrics.setLeader(leading, lastRenew)
	v := e.view
	v.Self = leading
	if leading {
		v.Expiry = lastRenew.Add(e.cfg.LeaseDuration)
	}
	e.setViewLocked(v)
}

// setWorking records whether the leader function is running, for Check.
func (e *Elector) setWorking(working bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.working = working
}

// setHandoff publishes the handoff request pending on the Lease this
// candidate holds, or that none is.
func (e *Elector) setHandoff(req HandoffRequest, pending bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.view
	v.Handoff = nil
	if pending {
		v.Handoff = &req
	}
	e.setViewLocked(v)
}

func (e *Elector) setViewLocked(v Leader) {
	old := e.view
	e.view = v
	if old.Identity == v.Identity && old.Token == v.Token && old.Self == v.Self && sameHandoff(old.Handoff, v.Handoff) {
		return
	}
	for s := range e.subs {
		s.send(v)
	}
}

func sameHandoff(a, b *HandoffRequest) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.To == b.To && a.Preferred == b.Preferred && a.RequestedAt.Equal(b.RequestedAt)
}
