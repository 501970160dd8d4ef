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

// Package skewclock is a real clock that runs fast or slow by a constant
// rate, with an arbitrary offset: the clock of a host whose oscillator
// drifts. It implements k8s.io/utils/clock.WithTicker, so it can be an
// elector.Config.Clock.
//
// elector tolerates clock rates that differ from true time by less than
// (LeaseDuration − RenewDeadline) / (LeaseDuration + RenewDeadline), and
// any offset; see [Bound].
package skewclock

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Bound is the largest clock-rate deviation from true time that elector
// documents as safe for these timings: a rate must stay strictly inside
// (1 − Bound, 1 + Bound).
func Bound(lease, renew time.Duration) float64 {
	return float64(lease-renew) / float64(lease+renew)
}

// Clock runs at Rate times real time. A rate of 1.1 makes 1.1 seconds
// pass on this clock per real second; its timers fire after d/Rate real
// time.
type Clock struct {
	rate  float64
	base  time.Time // real time at creation (with a monotonic reading)
	start time.Time // this clock's time at creation
}

var _ clock.WithTicker = (*Clock)(nil)

// New returns a clock that runs at rate (> 0) and starts offset away from
// real time.
func New(rate float64, offset time.Duration) *Clock {
	if rate <= 0 {
		panic("skewclock: rate must be positive")
	}
	now := time.Now()
	return &Clock{rate: rate, base: now, start: now.Add(offset)}
}

// Rate is the clock's rate.
func (c *Clock) Rate() float64 { return c.rate }

// real converts a duration on this clock to real time.
func (c *Clock) real(d time.Duration) time.Duration {
	return time.Duration(float64(d) / c.rate)
}

// Now is the time on this clock. Its monotonic reading moves at the same
// rate, so Sub and Since between its times are consistent.
func (c *Clock) Now() time.Time {
	return c.start.Add(time.Duration(float64(time.Since(c.base)) * c.rate))
}

// Since is Now().Sub(t).
func (c *Clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// After is NewTimer(d).C().
func (c *Clock) After(d time.Duration) <-chan time.Time { return c.NewTimer(d).C() }

// Sleep sleeps d on this clock.
func (c *Clock) Sleep(d time.Duration) { time.Sleep(c.real(d)) }

// Tick is NewTicker(d).C(); the ticker is never stopped.
func (c *Clock) Tick(d time.Duration) <-chan time.Time {
	if d <= 0 {
		return nil
	}
	return c.NewTicker(d).C()
}

// NewTimer fires once d has passed on this clock.
func (c *Clock) NewTimer(d time.Duration) clock.Timer {
	t := &timer{c: c, ch: make(chan time.Time, 1)}
	t.t = time.AfterFunc(c.real(d), t.fire)
	return t
}

type timer struct {
	c  *Clock
	ch chan time.Time
	t  *time.Timer
}

func (t *timer) fire() {
	select {
	case t.ch <- t.c.Now():
	default:
	}
}

func (t *timer) C() <-chan time.Time { return t.ch }
func (t *timer) Stop() bool          { return t.t.Stop() }
func (t *timer) Reset(d time.Duration) bool {
	return t.t.Reset(t.c.real(d))
}

// NewTicker ticks every d on this clock.
func (c *Clock) NewTicker(d time.Duration) clock.Ticker {
	if d <= 0 {
		panic("skewclock: non-positive interval for NewTicker")
	}
	tk := &ticker{c: c, ch: make(chan time.Time, 1), every: c.real(d)}
	tk.mu.Lock()
	tk.t = time.AfterFunc(tk.every, tk.fire)
	tk.mu.Unlock()
	return tk
}

type ticker struct {
	c       *Clock
	ch      chan time.Time
	every   time.Duration
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

func (tk *ticker) fire() {
	select {
	case tk.ch <- tk.c.Now():
	default: // drop ticks for a slow receiver, as time.Ticker does
	}
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if !tk.stopped {
		tk.t.Reset(tk.every)
	}
}

func (tk *ticker) C() <-chan time.Time { return tk.ch }

func (tk *ticker) Stop() {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	tk.stopped = true
	tk.t.Stop()
}
