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

package suite

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/elector-dev/elector/bench/internal/candidate"
)

func msList(v ...int) []time.Duration {
	d := make([]time.Duration, len(v))
	for i, x := range v {
		d[i] = time.Duration(x) * time.Millisecond
	}
	return d
}

// fakeResults is a run where elector meets every target but RSS.
func fakeResults() *results {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	lib := func(impl candidate.Impl, s []time.Duration) latencyResult {
		return latencyResult{label: "library: leader work starts", impl: impl, timing: candidate.Common, samples: s}
	}
	side := func(impl candidate.Impl, s []time.Duration) latencyResult {
		return latencyResult{label: "sidecar: new holder in the Lease", impl: impl, timing: candidate.Timing{Lease: 4 * time.Second, Renew: 2 * time.Second, Retry: 400 * time.Millisecond}, samples: s}
	}
	load := func(impl candidate.Impl, leader, follower map[string]float64) loadResult {
		total := map[string]float64{}
		for _, m := range []map[string]float64{leader, follower} {
			for k, v := range m {
				total[k] += v
			}
		}
		return loadResult{impl: impl, n: 10, window: 30 * time.Second, total: total, leader: leader, follower: follower}
	}
	return &results{
		opts:     Full(),
		started:  now,
		finished: now.Add(14 * time.Minute),
		machine:  machineInfo{cpus: 2, cpuModel: "Test CPU", memTotal: "8000000 kB", goVersion: "go1.26", loadStart: "0.1 0.1 0.1", loadEnd: "0.2 0.2 0.2"},
		handoff: []latencyResult{
			lib(candidate.Elector, msList(10, 12, 30)), lib(candidate.ClientGo, msList(400, 2000, 3500)),
			side(candidate.Elector, msList(11, 14, 20)), side(candidate.ClientGo, msList(300, 1500, 3000)),
		},
		crash: []latencyResult{
			side(candidate.Elector, msList(-700, -300, 40)), side(candidate.ClientGo, msList(500, 900, 1300)),
		},
		load: []loadResult{
			load(candidate.Elector, map[string]float64{"PUT": 0.5}, map[string]float64{}),
			load(candidate.ClientGo, map[string]float64{"PUT": 0.5}, map[string]float64{"GET": 2.8}),
		},
		footprint: []footprintResult{
			{impl: candidate.Elector, mem: [2]memory{{rss: 25 << 20, anon: 11 << 20, file: 14 << 20}, {rss: 24 << 20}}, binary: 27 << 20, idle: time.Minute},
			{impl: candidate.ClientGo, mem: [2]memory{{rss: 22 << 20}, {rss: 21 << 20}}, binary: 25 << 20, idle: time.Minute},
		},
		scale: []scaleResult{
			{impl: candidate.Elector, n: 1000, terminated: 2},
			{impl: candidate.ClientGo, n: 1000, terminated: -1, err: errors.New("boom\nsecond line")},
		},
	}
}

func TestRender(t *testing.T) {
	r := fakeResults()
	out := render(r)
	for _, want := range []string{
		"| Graceful handoff p99, library | 30 ms | 3.50 s | 0.0086× | < 50 ms | yes |",
		"| Crash takeover − lease, worst, sidecar (SIGKILL) | +40 ms | +1.30 s | 0.76× ¹ | ≤ +100 ms | yes |",
		"| Follower requests/s, all followers of one election (10 candidates) | 0 | 2.80 | 0× | 0 | yes |",
		"| Leader writes per renew interval (10 candidates) | 1.00 | 1.00 |  | ≤ 1 | yes |",
		"| RSS, leader | 25.0 MiB | 22.0 MiB | 1.14× | < 15 MiB | **NO** |",
		"**Target missed: sidecar RSS < 15 MiB.**",
		"failed (client-go) | boom second line",
		"2 CPUs (Test CPU), 7.6 GiB RAM",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, bad := range []string{"Target missed: graceful", "Target missed: crash", "%!"} {
		if strings.Contains(out, bad) {
			t.Errorf("report contains %q", bad)
		}
	}
	if !r.anyFailed() {
		t.Error("anyFailed = false with a failed scale variant")
	}
}

func TestRenderMissedHandoffAndWrites(t *testing.T) {
	r := fakeResults()
	r.handoff[0].samples = msList(10, 60)
	r.load[0].leader = map[string]float64{"PUT": 0.6} // 18 writes in 30 s
	out := render(r)
	for _, want := range []string{
		"| Graceful handoff p99, library | 60 ms | 3.50 s | 0.017× | < 50 ms | **NO** |",
		"**Target missed: graceful handoff p99 < 50 ms.**",
		"**Target missed: leader ≤ 1 write per renew interval.**",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// 16 writes in 30 s: within one edge write of 15.
	r = fakeResults()
	r.load[0].leader = map[string]float64{"PUT": 16.0 / 30}
	if v := leaderWritesVerdict(r.load[0]); v != met {
		t.Errorf("16 writes in 30 s: verdict %v, want met", v)
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{dur(1500 * time.Microsecond), "1.5 ms"},
		{dur(42 * time.Millisecond), "42 ms"},
		{dur(3210 * time.Millisecond), "3.21 s"},
		{dur(16900 * time.Millisecond), "16.9 s"},
		{sdur(-218 * time.Millisecond), "−218 ms"},
		{sdur(40 * time.Millisecond), "+40 ms"},
		{ratioF(0, 0), "—"},
		{ratioF(1, 0), "∞"},
		{ratioF(0.5, 16.2), "0.031×"},
		{ratioF(30, 3500), "0.0086×"},
		{verbs(map[string]float64{"PUT": 0.5, "GET": 2}), "2.50 (GET 2.00, PUT 0.50)"},
		{counts(map[string]int64{"POST": 1000, "GET": 1000}), "2000 (GET 1000, POST 1000)"},
		{mib(25 << 20), "25.0 MiB"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestSpliceSections(t *testing.T) {
	report := "# R\n\n## Summary\n\nnew summary\n\n## Overload: x\n\nnew numbers\n\n## How each number is measured\n\nnew notes\n"
	tests := []struct{ name, old, want string }{
		{
			name: "replaces the section, keeps the rest",
			old:  "# R\n\n## Summary\n\nold summary\n\n## Overload: x\n\nold numbers\n\n## How each number is measured\n\nold notes\n",
			want: "# R\n\n## Summary\n\nold summary\n\n## Overload: x\n\nnew numbers\n\n## How each number is measured\n\nold notes\n",
		},
		{
			name: "inserts before the notes",
			old:  "# R\n\n## Summary\n\nold summary\n\n## How each number is measured\n\nold notes\n",
			want: "# R\n\n## Summary\n\nold summary\n\n## Overload: x\n\nnew numbers\n\n## How each number is measured\n\nold notes\n",
		},
		{
			name: "appends at the end",
			old:  "# R\n\nold\n",
			want: "# R\n\nold\n\n## Overload: x\n\nnew numbers\n\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SpliceSections(tt.old, report, []string{ScenarioOverload})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("SpliceSections:\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
	if _, err := SpliceSections("x", report, []string{ScenarioHandoff}); err == nil {
		t.Error("SpliceSections of handoff: no error, want one (it has rows in the summary)")
	}
}

func TestParseNominalSeats(t *testing.T) {
	metrics := `# HELP apiserver_flowcontrol_nominal_limit_seats [BETA] Nominal number of execution seats configured for each priority level
# TYPE apiserver_flowcontrol_nominal_limit_seats gauge
apiserver_flowcontrol_nominal_limit_seats{priority_level="catch-all"} 1
apiserver_flowcontrol_nominal_limit_seats{priority_level="leader-election"} 1
apiserver_flowcontrol_nominal_limit_seats{priority_level="workload-low"} 7
apiserver_flowcontrol_current_limit_seats{priority_level="workload-low"} 9
`
	got := parseNominalSeats(metrics)
	if got[levelLeaderElection] != "1" || got[levelWorkloadLow] != "7" || len(got) != 2 {
		t.Errorf("parseNominalSeats = %v, want leader-election 1, workload-low 7", got)
	}
}

func TestRenderOverload(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	render := func(withLost int, withRenewals []time.Duration) string {
		r := &results{opts: Full(), overload: &overloadResult{flows: 48, runs: []overloadRun{
			{flowSchema: false, rep: 1, level: levelWorkloadLow, renewals: ms(2500, 2500, 300), failed: 2, failures: map[string]int{"timeout": 2}, lost: 1, changes: 1, flood: 45 * time.Second, lists: 450},
			{flowSchema: true, rep: 1, level: levelLeaderElection, renewals: withRenewals, lost: withLost, flood: 45 * time.Second, lists: 450},
		}}}
		m := &md{}
		renderOverload(m, r)
		return m.b.String()
	}
	out := render(0, ms(300, 400, 900))
	for _, want := range []string{
		"| with | leader-election | 3 | 400 ms | 900 ms | 900 ms | 0 | 0 | 0 | 10.0 |",
		"| without | workload-low | 3 | 2.50 s | 2.50 s | 2.50 s | 2 | 1 | 1 | 10.0 |",
		"| 1 | without | 3 | 2.50 s | 2.50 s | 2.50 s | 2 (2 timeout) | 1 | 1 |",
		"0 lost, p99 < 2s | yes |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the overload section lacks %q:\n%s", want, out)
		}
	}
	for _, c := range []struct {
		name     string
		lost     int
		renewals []time.Duration
	}{
		{"a lost tenure", 1, ms(300)},
		{"p99 at RetryPeriod", 0, ms(300, 2000)},
		{"no renewal", 0, nil},
	} {
		if out := render(c.lost, c.renewals); !strings.Contains(out, "0 lost, p99 < 2s | **NO** |") {
			t.Errorf("with %s the target is not missed:\n%s", c.name, out)
		}
	}
}
