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

package elector_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testclock "k8s.io/utils/clock/testing"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/fake"
)

// When the garbage is written, relative to the candidates.
const (
	garbageBeforeStart   = iota // the Lease is garbage when candidates start
	garbageKeepsHolder          // a hand edit while a leads; holder stays a
	garbageForeignHolder        // a hand edit while a leads; holder becomes a non-candidate
	garbageModes
)

// FuzzGarbageLease: a Lease edited by hand with garbage — empty or huge
// holder, negative or huge durations, missing or future times,
// transitions going backwards — never crashes a candidate and never
// yields two leaders. Two candidates run on the fake Lease API with one
// fake clock; the clock then advances 40 seconds in steps.
//
// Writing a candidate's identity, or an empty holder, into the Lease of a
// running leader is outside the guarantee (doc.go, assumption 4: only
// candidates write the holder); the foreign-holder mode therefore writes
// a name no candidate has.
//
// Each input runs in a synctest bubble, and after every step of the fake
// clock synctest.Wait returns only when every goroutine of the candidates
// and of the fake API is blocked: the candidates have reacted to the step
// before the next one, and no real time passes. (A real sleep per step
// made each input take 90 ms and its coverage depend on scheduling, so
// the fuzzing engine kept re-running "new" inputs to minimize them, for
// up to 14 s in which its exec counter stood still; the APITimeout and
// guard timers also ran on the real clock.) A candidate that hangs makes
// the bubble's time jump to the guard deadline at once, and the test
// fails with what it waited for.
//
// The holder is kept short in the input and made huge by a flag: the
// engine minimizes every input that seems to add coverage, with one run
// per byte it tries to remove (and more), so a 100 KB holder in the input
// cost it minutes of runs in which no new input was tried.
func FuzzGarbageLease(f *testing.F) {
	type seed struct {
		mode        uint8
		holder      string
		present     uint8 // bit mask: holder, duration, acquire, renew, transitions, huge holder
		dur         int32
		acq, ren    int64 // Unix microseconds
		transitions int32
	}
	future := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for _, s := range []seed{
		{garbageBeforeStart, "", 0x1f, 15, 0, 0, 0},
		{garbageBeforeStart, "ghost", 0x1f, -15, future, future, 7},
		{garbageBeforeStart, "ghost", 0x1f, math.MaxInt32, 0, 0, 3},
		{garbageBeforeStart, "x", 0x23, 0, 0, 0, 0},
		{garbageBeforeStart, "ghost", 0x01, 0, 0, 0, 0},
		{garbageBeforeStart, "a", 0x1f, 1, -future, future, -5},
		{garbageKeepsHolder, "", 0x1e, -1, 0, future, 0},
		{garbageKeepsHolder, "", 0x12, 2, 0, 0, -100},
		{garbageKeepsHolder, "", 0x00, 0, 0, 0, 0},
		{garbageForeignHolder, "", 0x1f, 1, 0, 0, 0},
		{garbageForeignHolder, "b", 0x1f, 0, future, 0, 0},
		{garbageForeignHolder, "ghost", 0x13, math.MaxInt32, 0, 0, 1},
		{garbageForeignHolder, "\x00\xff", 0x1f, -7, -1, -1, -1},
	} {
		f.Add(s.mode, s.holder, s.present, s.dur, s.acq, s.ren, s.transitions)
	}
	f.Fuzz(func(t *testing.T, mode uint8, holder string, present uint8, dur int32, acq, ren int64, transitions int32) {
		synctest.Test(t, func(t *testing.T) {
			garbageLease(t, mode, holder, present, dur, acq, ren, transitions)
		})
	})
}

// garbageLease is one input of FuzzGarbageLease; it runs in a synctest
// bubble.
func garbageLease(t *testing.T, mode uint8, holder string, present uint8, dur int32, acq, ren int64, transitions int32) {
	mode %= garbageModes
	holder = holder[:min(len(holder), maxFuzzHolder)]
	if present&32 != 0 {
		holder = strings.Repeat(holder+"x", hugeHolder/(len(holder)+1)+1)
	}
	g := newGarbageWorld(t)
	garbage := func(l *coordinationv1.Lease) {
		s := coordinationv1.LeaseSpec{}
		switch h := holder; {
		case mode == garbageKeepsHolder:
			s.HolderIdentity = ptrTo("a")
		case mode == garbageForeignHolder:
			// A missing holder reads as empty: released (assumption 4).
			if h == "" || h == "a" || h == "b" {
				h += "-not-a-candidate"
			}
			s.HolderIdentity = &h
		case present&1 != 0:
			s.HolderIdentity = &h
		}
		if present&2 != 0 {
			s.LeaseDurationSeconds = ptrTo(dur)
		}
		if present&4 != 0 {
			s.AcquireTime = &metav1.MicroTime{Time: time.UnixMicro(acq)}
		}
		if present&8 != 0 {
			s.RenewTime = &metav1.MicroTime{Time: time.UnixMicro(ren)}
		}
		if present&16 != 0 {
			s.LeaseTransitions = ptrTo(transitions)
		}
		l.Spec = s
	}

	if mode == garbageBeforeStart {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: lease, Namespace: ns}}
		garbage(l)
		if _, err := g.leases.Leases(ns).Create(context.Background(), l, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		g.start("a")
		g.start("b")
	} else {
		g.start("a")
		g.waitLeader("a")
		g.start("b")
		g.waitSeen("b", "a")
		l, err := g.leases.Leases(ns).Get(context.Background(), lease, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		garbage(l)
		if _, err := g.leases.Leases(ns).Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for range 40 {
		g.clock.Step(time.Second)
		synctest.Wait() // every candidate has reacted to the step
	}
	g.stop()
	if len(g.overlaps) > 0 {
		t.Fatalf("two leaders: %v", g.overlaps)
	}
	// Tokens grow from tenure to tenure (the int32 limit aside, see
	// FuzzLeaseRecord).
	if present&16 == 0 || transitions < math.MaxInt32-2 {
		for i := 1; i < len(g.tokens); i++ {
			if g.tokens[i] <= g.tokens[i-1] {
				t.Fatalf("fencing tokens %v do not grow", g.tokens)
			}
		}
	}
}

// FuzzGarbageLease's holders: at most maxFuzzHolder bytes come from the
// input (names are at most 253), and a huge one is over hugeHolder.
const (
	maxFuzzHolder = 64
	hugeHolder    = 100000
)

func ptrTo[T any](v T) *T { return &v }

// garbageWorld is two candidates on one fake API and one fake clock, with
// an overlap detector.
type garbageWorld struct {
	t      *testing.T
	leases *fake.Leases
	clock  *testclock.FakeClock

	mu       sync.Mutex
	acting   map[string]bool
	overlaps []string
	tokens   []elector.Token
	els      map[string]*elector.Elector
	cancels  []context.CancelFunc
	dones    []chan error
}

func newGarbageWorld(t *testing.T) *garbageWorld {
	return &garbageWorld{
		t: t, leases: fake.NewLeases(), clock: testclock.NewFakeClock(epoch),
		acting: map[string]bool{}, els: map[string]*elector.Elector{},
	}
}

func (g *garbageWorld) start(id string) {
	e, err := elector.New(elector.Config{
		Leases: g.leases.Leases(ns), Namespace: ns, Name: lease, Identity: id,
		Clock: g.clock, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		g.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	g.mu.Lock()
	g.els[id] = e
	g.cancels = append(g.cancels, cancel)
	g.dones = append(g.dones, done)
	g.mu.Unlock()
	go func() {
		var err error
		for ctx.Err() == nil && (err == nil || errors.Is(err, elector.ErrLeadershipLost)) {
			err = e.Run(ctx, func(ctx context.Context, term elector.Term) error {
				g.enter(id, term.Token)
				<-ctx.Done()
				g.leave(id)
				return nil
			})
		}
		done <- err
	}()
}

func (g *garbageWorld) enter(id string, tok elector.Token) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for other, on := range g.acting {
		if on && other != id {
			g.overlaps = append(g.overlaps, fmt.Sprintf("%s (token %d) started while %s acted", id, tok, other))
		}
	}
	g.acting[id] = true
	g.tokens = append(g.tokens, tok)
}

func (g *garbageWorld) leave(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.acting[id] = false
}

// waitLeader waits (in real time, on a failure deadline) until id leads.
func (g *garbageWorld) waitLeader(id string) {
	g.t.Helper()
	deadline := time.Now().Add(guard)
	for {
		g.mu.Lock()
		on := g.acting[id]
		g.mu.Unlock()
		if on {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("timed out waiting for %s to lead", id)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitSeen waits until candidate id has seen leader.
func (g *garbageWorld) waitSeen(id, leader string) {
	g.t.Helper()
	g.mu.Lock()
	e := g.els[id]
	g.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	for l := range e.Subscribe(ctx) {
		if l.Identity == leader {
			return
		}
	}
	g.t.Fatalf("timed out waiting for %s to see leader %s", id, leader)
}

func (g *garbageWorld) stop() {
	g.t.Helper()
	for _, c := range g.cancels {
		c()
	}
	for _, d := range g.dones {
		select {
		case err := <-d:
			var fe *elector.ForbiddenError
			if err != nil && !errors.As(err, &fe) && !apierrors.IsInvalid(err) {
				g.t.Errorf("Run = %v", err)
			}
		case <-time.After(guard):
			g.t.Fatal("a candidate did not return after cancel")
		}
	}
}
