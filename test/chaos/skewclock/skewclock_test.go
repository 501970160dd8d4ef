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

package skewclock

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBoundOfTheDefaults(t *testing.T) {
	if got := Bound(15*time.Second, 10*time.Second); got != 0.2 {
		t.Fatalf("Bound(15s, 10s) = %v, want 0.2 (doc.go: a fifth)", got)
	}
}

func TestRateScalesElapsedTime(t *testing.T) {
	for _, rate := range []float64{0.5, 2} {
		c := New(rate, -time.Hour)
		realStart := time.Now()
		start := c.Now()
		if d := realStart.Sub(start); d < 59*time.Minute || d > 61*time.Minute {
			t.Fatalf("offset = %v, want 1h", d)
		}
		time.Sleep(200 * time.Millisecond)
		elapsed, real := c.Since(start), time.Since(realStart)
		// Allow for the scheduling between the two readings.
		if ratio := float64(elapsed) / float64(real); ratio < rate*0.9 || ratio > rate*1.1 {
			t.Fatalf("rate %v: %v passed on the clock in %v real time", rate, elapsed, real)
		}
	}
}

func TestTimersFireAfterScaledRealTime(t *testing.T) {
	fast := New(2, 0)
	start := time.Now()
	tm := fast.NewTimer(400 * time.Millisecond) // 200ms real
	at := <-tm.C()
	if real := time.Since(start); real < 200*time.Millisecond || real > 390*time.Millisecond {
		t.Fatalf("a 400ms timer at rate 2 fired after %v real time, want about 200ms", real)
	}
	if at.IsZero() {
		t.Fatal("timer delivered a zero time")
	}
	if tm.Stop() {
		t.Fatal("Stop of a fired timer reported true")
	}

	slow := New(0.5, 0)
	tm = slow.NewTimer(100 * time.Millisecond) // 200ms real
	start = time.Now()
	if !tm.Reset(50 * time.Millisecond) { // 100ms real
		t.Fatal("Reset of an active timer reported false")
	}
	<-tm.C()
	if real := time.Since(start); real < 100*time.Millisecond || real > 190*time.Millisecond {
		t.Fatalf("a reset 50ms timer at rate 0.5 fired after %v, want about 100ms", real)
	}
}

func TestTickerTicksUntilStopped(t *testing.T) {
	c := New(2, 0)
	tk := c.NewTicker(40 * time.Millisecond) // every 20ms real
	for range 3 {
		select {
		case <-tk.C():
		case <-time.After(time.Second):
			t.Fatal("no tick")
		}
	}
	tk.Stop()
	time.Sleep(50 * time.Millisecond)
	select {
	case <-tk.C():
	default:
	}
	select {
	case <-tk.C():
		t.Fatal("tick after Stop")
	case <-time.After(100 * time.Millisecond):
	}
}
