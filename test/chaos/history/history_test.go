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

package history

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const ms = int64(time.Millisecond)

func ev(kind, who string, token, atMS int64) Event {
	return Event{Kind: kind, Who: who, Token: token, At: atMS * ms}
}

func TestCheckFindsOverlappingTenures(t *testing.T) {
	rep := Check([]Event{
		ev(Start, "a", 0, 0), ev(Stop, "a", 0, 100),
		ev(Start, "b", 1, 90), ev(Stop, "b", 1, 200), // starts 10ms before a stops
	}, Options{})
	if len(rep.Overlaps) != 1 || rep.Safe() {
		t.Fatalf("overlaps = %v, want a/b", rep.Overlaps)
	}
	if o := rep.Overlaps[0]; o.A.Who != "a" || o.B.Who != "b" {
		t.Fatalf("overlap = %v", o)
	}
	if !strings.Contains(rep.Problems(), "overlaps") {
		t.Fatalf("Problems() = %q", rep.Problems())
	}
}

func TestCheckEndsAKilledTenureAtItsLastBeat(t *testing.T) {
	// a is killed after its beat at 50 and records no stop; b starts at
	// 60: no overlap.
	rep := Check([]Event{
		ev(Start, "a", 0, 0), ev(Beat, "a", 0, 20), ev(Beat, "a", 0, 50),
		ev(Start, "b", 1, 60), ev(Beat, "b", 1, 80), ev(Stop, "b", 1, 90),
	}, Options{})
	if !rep.Safe() {
		t.Fatalf("unexpected problems:\n%s", rep.Problems())
	}
	if a := rep.Intervals[0]; a.End != 50*ms || a.Stopped {
		t.Fatalf("a = %v, want ended at its last beat, not stopped", a)
	}
	if len(rep.Gaps) != 1 || rep.Gaps[0] != 10*time.Millisecond {
		t.Fatalf("gaps = %v, want [10ms]", rep.Gaps)
	}

	// c starts at 40, while a still beat at 50: overlap.
	rep = Check([]Event{
		ev(Start, "a", 0, 0), ev(Beat, "a", 0, 50),
		ev(Start, "c", 1, 40), ev(Stop, "c", 1, 90),
	}, Options{})
	if len(rep.Overlaps) != 1 {
		t.Fatalf("a beat at 50 after c started at 40: overlaps = %v, want 1", rep.Overlaps)
	}
}

func TestCheckReportsViolationsOfDetectors(t *testing.T) {
	rep := Check([]Event{ev(Violation, "b", 3, 10)}, Options{})
	if rep.Safe() || len(rep.Violations) != 1 {
		t.Fatalf("violations = %v, want 1", rep.Violations)
	}
}

func TestCheckMeasuresRecoveryAndTakeover(t *testing.T) {
	rep := Check([]Event{
		ev(Start, "a", 0, 0),
		ev(Fault, "a", -1, 100), // blackhole of the leader a
		ev(Stop, "a", 0, 400),   // a steps down
		ev(Start, "b", 1, 1100), // b takes over 1s after the fault
		ev(Heal, "*", -1, 1500), // b leads at the heal: recovered at once
		ev(Fault, "*", -1, 5000),
		ev(Stop, "b", 1, 5300),
		ev(Heal, "*", -1, 6000),
		ev(Start, "c", 2, 6100), // short-lived: deposed within Stable
		ev(Stop, "c", 2, 6200),
		ev(Start, "a", 3, 8000), // the one that lasts
		ev(Note, "*", -1, 20000),
		ev(Stop, "a", 3, 20000),
	}, Options{Stable: time.Second})
	if !rep.Safe() {
		t.Fatalf("unexpected problems:\n%s", rep.Problems())
	}
	if rep.Faults != 2 {
		t.Fatalf("faults = %d, want 2", rep.Faults)
	}
	if len(rep.Recoveries) != 2 || rep.Recoveries[0].After != 0 || rep.Recoveries[1].After != 2*time.Second || rep.Recoveries[1].Leader != "a" {
		t.Fatalf("recoveries = %+v, want 0 then 2s (a)", rep.Recoveries)
	}
	if len(rep.Takeovers) != 2 {
		t.Fatalf("takeovers = %+v, want 2", rep.Takeovers)
	}
	if tk := rep.Takeovers[0]; tk.From != "a" || tk.To != "b" || tk.After != time.Second {
		t.Fatalf("takeover = %+v, want a -> b after 1s", tk)
	}
	if tk := rep.Takeovers[1]; tk.From != "b" || tk.To != "c" || tk.After != 1100*time.Millisecond {
		t.Fatalf("takeover = %+v, want b -> c after 1.1s", tk)
	}
}

func TestCheckReportsAHealWithoutLeader(t *testing.T) {
	rep := Check([]Event{ev(Start, "a", 0, 0), ev(Stop, "a", 0, 10), ev(Heal, "*", -1, 20)}, Options{})
	if len(rep.Unrecovered) != 1 {
		t.Fatalf("unrecovered = %v, want the heal", rep.Unrecovered)
	}
}

func TestRecorderDetectsOverlapInProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "record")
	r, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Begin("a", 0); err != nil {
		t.Fatal(err)
	}
	if err := r.Begin("b", 1); err == nil {
		t.Fatal("b began while a acted: want an error")
	}
	r.End("a", 0)
	r.End("b", 1)
	if err := r.Begin("c", 2); err != nil {
		t.Fatalf("c began after all ended: %v", err)
	}
	r.End("c", 2)

	evs, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	rep := Check(evs, Options{})
	if len(rep.Violations) != 1 || len(rep.Overlaps) != 1 {
		t.Fatalf("violations %v, overlaps %v; want one of each", rep.Violations, rep.Overlaps)
	}
}

func TestConcurrentAppendsStayWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "record")
	const writers, lines = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			for i := range lines {
				if err := AppendLine(f, Event{Kind: Beat, Who: string(rune('a' + w)), Token: int64(i), Detail: strings.Repeat("x", 100)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	evs, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != writers*lines {
		t.Fatalf("read %d events, want %d", len(evs), writers*lines)
	}
}

func TestReadIgnoresOnlyATornLastLine(t *testing.T) {
	dir := t.TempDir()
	torn := filepath.Join(dir, "torn")
	if err := os.WriteFile(torn, []byte("start a 0 10\nstop a 0 20\nbeat a 0"), 0o644); err != nil {
		t.Fatal(err)
	}
	if evs, err := Read(torn); err != nil || len(evs) != 2 {
		t.Fatalf("Read = %v, %v; want 2 events", evs, err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("start a 0 10\ngarbage\nstop a 0 20\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(bad); err == nil {
		t.Fatal("a malformed middle line must be an error")
	}
}

func TestNowIsMonotonic(t *testing.T) {
	a := Now()
	time.Sleep(time.Millisecond)
	if b := Now(); b-a < ms {
		t.Fatalf("Now advanced %dns over 1ms", b-a)
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3}
	for p, want := range map[float64]time.Duration{0: 1, 50: 3, 90: 5, 100: 5} {
		if got := Percentile(ds, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("p50 of nothing must be 0")
	}
}
