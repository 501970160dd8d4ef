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
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/elector-dev/elector/test/chaos/harness"
	"github.com/elector-dev/elector/test/controlplane"
)

var (
	cp   *controlplane.ControlPlane
	bins harness.Binaries
)

// Parallel tests. A test whose faults stay within its own election runs
// in parallel (t.Parallel): each Env has its own namespace, RoleBinding,
// Lease, record, lock file and fault proxies, and KillStragglers finds
// only the processes marked with its namespace; TestHARollingRestart runs
// its own HA control plane. So TestHARollingRestart, TestDenialsAndThrottling
// (RoleBinding revoked in its namespace, 429s in its candidates'
// transports), the starve tests that must see an overlap or a fenced
// write, and the garbage Leases run alongside one another. Tests that stop
// the shared kube-apiserver or etcd (the seeded schedules) stay serial:
// go test resumes parallel tests only after every serial test has
// returned, so none of them sees those outages. So does
// TestStarvedElectorsCommandIsKilledBeforeTakeover, whose pass depends on
// the watchdog being scheduled within the lease's margin: it runs on a
// machine no other chaos test loads.

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "elector-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	bins, err = harness.Build(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: unable to build the sidecar and the actor: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := controlplane.RunMain(m, &cp)
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutine leak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// newEnv makes a fresh election for one test. Its log and the replicas'
// logs are printed if the test fails.
func newEnv(t *testing.T) *harness.Env {
	t.Helper()
	dir := t.TempDir()
	log, err := os.Create(filepath.Join(dir, "harness.log"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := harness.NewEnv(t.Context(), cp, dir, "chaos", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if n := harness.KillStragglers(e); n > 0 {
			t.Errorf("%d processes outlived the test", n)
		}
		e.Close()
		log.Close()
		if t.Failed() {
			dumpLogs(t, dir)
		}
	})
	return e
}

// dumpLogs prints the tail of every log of the election.
func dumpLogs(t *testing.T, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	files = append(files, filepath.Join(dir, "record"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if filepath.Base(f) == "record" {
			// Beats are noise; keep the rest.
			var keep []string
			for _, l := range lines {
				if !strings.HasPrefix(l, "beat ") && !strings.HasPrefix(l, "write ") {
					keep = append(keep, l)
				}
			}
			lines = keep
		}
		if len(lines) > 150 {
			lines = lines[len(lines)-150:]
		}
		t.Logf("==== %s (last %d lines)\n%s", filepath.Base(f), len(lines), strings.Join(lines, "\n"))
	}
}

// checkResult fails the test on every problem of a schedule's run and logs
// its numbers.
func checkResult(t *testing.T, res harness.Result) {
	t.Helper()
	rep := res.Report
	t.Logf("%s schedule %s", res.Kind, res.Schedule)
	t.Logf("took %v: %d tenures, %d faults, %d takeovers, recoveries %v, exits %v",
		res.Took.Round(time.Millisecond), len(rep.Intervals), rep.Faults, len(rep.Takeovers), recoveries(res), res.Exits)
	for _, p := range res.Problems {
		t.Errorf("%s", p)
	}
	// The bound is lease + 1s after each heal; the long run
	// measures it (CHAOS.md). Here, on a loaded CI machine, only a miss
	// by more than 2s more fails the test.
	lease := harness.DefaultTiming.Lease
	if res.Kind == "sidecar" {
		lease = harness.SidecarTTL
	}
	for _, r := range rep.Recoveries {
		switch {
		case r.After > lease+harness.Bound+2*time.Second:
			t.Errorf("no leader until %v after %q (bound: lease %v + %v)", r.After.Round(time.Millisecond), r.Heal.Detail, lease, harness.Bound)
		case r.After > lease+harness.Bound:
			t.Logf("slow: no leader until %v after %q (bound: lease %v + %v)", r.After.Round(time.Millisecond), r.Heal.Detail, lease, harness.Bound)
		}
	}
	if len(rep.Intervals) < 2 {
		t.Errorf("only %d tenures: the schedule exercised nothing", len(rep.Intervals))
	}
}

func recoveries(res harness.Result) []time.Duration {
	var ds []time.Duration
	for _, r := range res.Report.Recoveries {
		ds = append(ds, r.After.Round(time.Millisecond))
	}
	return ds
}
