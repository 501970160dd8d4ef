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
	"math"
	"time"

	"k8s.io/utils/clock"
)

// driftClock is a node's clock: it runs at rate times the bubble's
// (virtual, true) time, from an arbitrary offset. Timers fire after the
// node's duration, i.e. after d/rate of true time.
type driftClock struct {
	origin time.Time // true time when the clock was made
	offset time.Duration
	rate   float64
}

var _ clock.WithTicker = (*driftClock)(nil)

func newDriftClock(rate float64, offset time.Duration) *driftClock {
	return &driftClock{origin: time.Now(), offset: offset, rate: rate}
}

// Now is the origin plus offset plus floor(elapsed × rate).
func (c *driftClock) Now() time.Time {
	return c.at(time.Since(c.origin))
}

func (c *driftClock) at(elapsed time.Duration) time.Time {
	return c.origin.Add(c.offset + time.Duration(math.Floor(float64(elapsed)*c.rate)))
}

func (c *driftClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// real converts a duration from now on this clock into true time: the
// first true instant at which Now has advanced by d. A timer therefore
// fires exactly when Now reaches its target, never a nanosecond after
// (code that re-arms a timer for an instant Now has passed, while another
// timer for that instant has not fired yet, would spin in virtual time).
func (c *driftClock) real(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	now := time.Since(c.origin)
	target := c.at(now).Add(d)
	e := time.Duration(math.Ceil(float64(target.Sub(c.origin)-c.offset) / c.rate))
	for c.at(e).Before(target) {
		e++
	}
	for e > now && !c.at(e-1).Before(target) {
		e--
	}
	return e - now
}

func (c *driftClock) After(d time.Duration) <-chan time.Time { return c.NewTimer(d).C() }

func (c *driftClock) NewTimer(d time.Duration) clock.Timer {
	return &driftTimer{c: c, t: time.NewTimer(c.real(d))}
}

func (c *driftClock) Sleep(d time.Duration) { time.Sleep(c.real(d)) }

func (c *driftClock) Tick(d time.Duration) <-chan time.Time { return c.NewTicker(d).C() }

func (c *driftClock) NewTicker(d time.Duration) clock.Ticker {
	return &driftTicker{t: time.NewTicker(c.real(d))}
}

type driftTimer struct {
	c *driftClock
	t *time.Timer
}

func (t *driftTimer) C() <-chan time.Time        { return t.t.C }
func (t *driftTimer) Stop() bool                 { return t.t.Stop() }
func (t *driftTimer) Reset(d time.Duration) bool { return t.t.Reset(t.c.real(d)) }

type driftTicker struct{ t *time.Ticker }

func (t *driftTicker) C() <-chan time.Time { return t.t.C }
func (t *driftTicker) Stop()               { t.t.Stop() }
