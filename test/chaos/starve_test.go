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

package chaos

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elector-dev/elector/test/chaos/harness"
	"github.com/elector-dev/elector/test/chaos/history"
	"github.com/elector-dev/elector/test/chaos/skewclock"
)

// pauseFor is how long the tests below freeze a leader: twice the lease,
// so another replica certainly takes over meanwhile.
const pauseFor = 2 * harness.SidecarTTL

// twoReplicas starts replicas a and b and waits until a leads and b runs.
func twoReplicas(t *testing.T, e *harness.Env, opts harness.ReplicaOptions) (a, b *harness.Replica, c *harness.Cluster) {
	t.Helper()
	a, err := e.StartReplica(bins, "a", opts)
	if err != nil {
		t.Fatal(err)
	}
	c = &harness.Cluster{Env: e, Reps: []*harness.Replica{a}, Lease: harness.SidecarTTL}
	t.Cleanup(func() { c.Stop() })
	if who, err := c.WaitLeader(t.Context(), 500*time.Millisecond, time.Minute); err != nil || who != "a" {
		t.Fatalf("leader %q, %v; want a", who, err)
	}
	b, err = e.StartReplica(bins, "b", opts)
	if err != nil {
		t.Fatal(err)
	}
	c.Reps = append(c.Reps, b)
	// b follows once it has read the Lease; its log says when it started.
	waitFor(t, "b to start", func() bool { return strings.Contains(readFile(e.Dir+"/b.log"), "Skipping permission check") })
	time.Sleep(time.Second) // its GET and watch: setup, not an assertion
	return a, b, c
}

// tenures returns the tenures of who in the record.
func tenures(rep history.Report, who string) []history.Interval {
	var out []history.Interval
	for _, in := range rep.Intervals {
		if in.Who == who {
			out = append(out, in)
		}
	}
	return out
}

// TestStarvedElectorsCommandIsKilledBeforeTakeover freezes only the
// elector process of the leading replica (SIGSTOP), for twice the lease,
// while its command keeps running. Another replica takes over meanwhile.
// The command must be dead before the other replica's command starts:
// consul lock fails exactly this (hashicorp/consul #9788), because the
// process that would stop its child is the one that is frozen. elector's
// watchdog keeps its own deadline from the last heartbeat and kills the
// command when it passes, without help from the frozen elector.
func TestStarvedElectorsCommandIsKilledBeforeTakeover(t *testing.T) {
	e := newEnv(t)
	a, _, c := twoReplicas(t, e, harness.ReplicaOptions{})

	pausedAt := e.Rec.Fault("a", "SIGSTOP of a's elector only")
	a.PauseElector()
	if _, err := c.WaitLeaderIs(t.Context(), "b", 0, time.Minute); err != nil {
		t.Fatalf("while a is frozen: %v", err)
	}
	time.Sleep(time.Until(time.Now().Add(time.Duration(pausedAt + int64(pauseFor) - history.Now()))))
	a.Cont()
	e.Rec.Heal("SIGCONT of a")
	// a notices, stops and exits; it is restarted and follows.
	waitFor(t, "a's elector to exit after SIGCONT", func() bool { return len(a.Exits()) > 0 })
	if _, err := c.WaitLeader(t.Context(), time.Second, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Stop() {
		t.Error(p)
	}

	rep := readReport(t, e)
	if !rep.Safe() {
		t.Fatalf("the frozen elector's command overlapped the new leader's:\n%s", rep.Problems())
	}
	as, bs := tenures(rep, "a"), tenures(rep, "b")
	if len(as) == 0 || len(bs) == 0 {
		t.Fatalf("tenures of a %v, of b %v; want both", as, bs)
	}
	aEnd, bStart := as[0].End, bs[0].Start
	t.Logf("a's command was last seen %v after its elector froze; b's command started %v after that (lease %v, renew deadline %v)",
		time.Duration(aEnd-pausedAt).Round(time.Millisecond), time.Duration(bStart-aEnd).Round(time.Millisecond),
		harness.SidecarTTL, harness.SidecarRenew)
	if as[0].Stopped {
		t.Errorf("a's command recorded a stop: it got SIGTERM from the frozen elector?")
	}
	if bStart <= aEnd {
		t.Errorf("b's command started before a's was dead")
	}
	if aEnd-pausedAt >= int64(pauseFor) {
		t.Errorf("a's command ran for the whole pause: the watchdog did not kill it")
	}
	log := readFile(e.Dir + "/a.log")
	if !strings.Contains(log, `msg="Killing command" process=watchdog reason="heartbeat deadline passed"`) {
		t.Errorf("a's watchdog did not report killing the command for a missed heartbeat deadline; a.log:\n%s", log)
	}
	// Woken past its renew deadline, the elector says it ran late, gives
	// the (already stopped) command StopGrace, and reports a loss (6), not
	// an overrun (7): the watchdog had done its job.
	if code := a.Exits()[0]; code != harness.ExitLost {
		t.Errorf("a's elector exited with %d after the pause, want %d (leadership lost)", code, harness.ExitLost)
	}
	if !strings.Contains(log, "Election loop ran late") {
		t.Errorf("a's elector did not report that it ran late; a.log:\n%s", log)
	}
}

// TestWithoutItsWatchdogTheCommandOutlivesTheLease is the control of the
// test above: it freezes the elector and its watchdog, leaving only the
// command running, which is the consul lock design (only the frozen
// process can stop the command). The overlap must then be detected; if it
// were not, the test above would prove nothing.
func TestWithoutItsWatchdogTheCommandOutlivesTheLease(t *testing.T) {
	t.Parallel() // no fault on the shared control plane: see main_test.go
	e := newEnv(t)
	a, _, c := twoReplicas(t, e, harness.ReplicaOptions{})

	e.Rec.Fault("a", "SIGSTOP of a's elector and watchdog")
	a.PauseExceptActor()
	if _, err := c.WaitLeaderIs(t.Context(), "b", 0, time.Minute); err != nil {
		t.Fatalf("while a is frozen: %v", err)
	}
	a.Cont()
	e.Rec.Heal("SIGCONT of a")
	waitFor(t, "a's elector to exit after SIGCONT", func() bool { return len(a.Exits()) > 0 })
	c.Stop()

	rep := readReport(t, e)
	if rep.Safe() {
		t.Fatal("no overlap detected although a's command ran unsupervised past its lease")
	}
	found := false
	for _, v := range rep.Violations {
		found = found || v.Who == "b"
	}
	if !found {
		t.Fatalf("violations %v: want b's command to find the lock held", rep.Violations)
	}
	t.Logf("detected, as it must be:\n%s", rep.Problems())
}

// TestFencingTokenRejectsAFrozenLeadersWrites goes beyond the documented
// bounds: the whole leading replica (elector, watchdog and command) is
// frozen for twice the lease, as a stopped VM would be. No timeout can
// help: its command resumes believing it leads. The fencing token lets
// the downstream store reject its writes once the new leader has written.
func TestFencingTokenRejectsAFrozenLeadersWrites(t *testing.T) {
	t.Parallel() // no fault on the shared control plane: see main_test.go
	e := newEnv(t)
	store, err := e.StartStore()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	a, _, c := twoReplicas(t, e, harness.ReplicaOptions{Store: store.URL})
	waitFor(t, "a to write", func() bool { acc, _ := store.Writes(); return len(acc) > 0 })

	e.Rec.Fault("a", "SIGSTOP of all of a")
	a.PauseAll()
	waitFor(t, "b to write", func() bool {
		acc, _ := store.Writes()
		return acc[len(acc)-1].Who == "b"
	})
	time.Sleep(pauseFor / 2)
	// Only the command wakes first (its watchdog is still frozen): it
	// writes with its old token.
	a.ContActor()
	waitFor(t, "a's stale write", func() bool { _, rej := store.Writes(); return len(rej) > 0 })
	a.Cont()
	e.Rec.Heal("SIGCONT of all of a")
	waitFor(t, "a's elector to exit after SIGCONT", func() bool { return len(a.Exits()) > 0 })
	c.Stop()

	acc, rej := store.Writes()
	var aToken, bToken int64 = -1, -1
	for i, w := range acc {
		if i > 0 && w.Token < acc[i-1].Token {
			t.Errorf("the store accepted token %d after %d", w.Token, acc[i-1].Token)
		}
		switch w.Who {
		case "a":
			if bToken >= 0 {
				t.Errorf("the store accepted a write by a (token %d) after b's (token %d)", w.Token, bToken)
			}
			aToken = w.Token
		case "b":
			if bToken < 0 {
				bToken = w.Token
			}
		}
	}
	if aToken < 0 || bToken <= aToken {
		t.Fatalf("tokens: a %d, b %d; want b's above a's", aToken, bToken)
	}
	for _, w := range rej {
		if w.Who != "a" || w.Token != aToken {
			t.Errorf("rejected %+v; want only a's writes with token %d", w, aToken)
		}
	}
	t.Logf("the store accepted %d writes and rejected %d stale writes of the frozen leader (token %d < %d)", len(acc), len(rej), aToken, bToken)

	// The timeout-based lock alone failed here, as it must beyond its
	// bounds: the detector saw both commands act.
	rep := readReport(t, e)
	if rep.Safe() {
		t.Errorf("no overlap detected, although a's command resumed after b took over")
	}
}

func readReport(t *testing.T, e *harness.Env) history.Report {
	t.Helper()
	evs, err := history.Read(e.Record)
	if err != nil {
		t.Fatal(err)
	}
	return history.Check(evs, history.Options{})
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// waitFor polls cond until it holds; the guard is a failure deadline, not
// a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClockRateBeyondTheBoundBreaksMutualExclusion is the library-level
// control: with clock rates far outside the documented bound (the leader's
// clock at half speed, the follower's at 1.6×), a leader cut off from the
// API server still acts when the follower's lease expires. The detector
// must see it; within the bound (TestLibrarySchedules) it never does.
func TestClockRateBeyondTheBoundBreaksMutualExclusion(t *testing.T) {
	t.Parallel() // no fault on the shared control plane: see main_test.go
	e := newEnv(t)
	tm := harness.DefaultTiming
	slow, err := e.StartLib("slow", tm, 0.5, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := &harness.Cluster{Env: e, Lib: []*harness.LibCandidate{slow}, Lease: tm.Lease}
	t.Cleanup(func() { c.Stop() })
	if _, err := c.WaitLeaderIs(t.Context(), "slow", 500*time.Millisecond, time.Minute); err != nil {
		t.Fatal(err)
	}
	fast, err := e.StartLib("fast", tm, 1.6, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	c.Lib = append(c.Lib, fast)
	time.Sleep(time.Second) // fast reads the Lease and follows: setup, not an assertion

	e.Rec.Fault("slow", "blackhole; clock rates 0.5 and 1.6, bound ±"+strconv.FormatFloat(skewclock.Bound(tm.Lease, tm.Renew), 'f', 2, 64))
	slow.Proxy.Blackhole()
	if _, err := c.WaitLeaderIs(t.Context(), "fast", 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	time.Sleep(tm.Renew) // the slow leader's own stop
	slow.Proxy.Heal()
	c.Stop()

	rep := readReport(t, e)
	if rep.Safe() {
		t.Fatal("no overlap detected with clock rates far beyond the documented bound")
	}
	t.Logf("detected, as it must be:\n%s", rep.Problems())
}
