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

package harness

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/elector-dev/elector/test/chaos/history"
)

// Summary aggregates the results of many schedules.
type Summary struct {
	Results []Result
}

// Add adds one schedule's result.
func (s *Summary) Add(r Result) { s.Results = append(s.Results, r) }

// Failed counts the schedules with problems.
func (s *Summary) Failed() int {
	n := 0
	for _, r := range s.Results {
		if !r.OK() {
			n++
		}
	}
	return n
}

// WriteTable writes the summary as Markdown.
func (s *Summary) WriteTable(w io.Writer) {
	var (
		kinds                       = map[string]int{}
		faults, overlaps, viols     int
		tenures, writes, rejects    int
		takeovers, recovers, gaps   []time.Duration
		late                        []string
		exits                       = map[int]int{}
		schedules                   = map[string]int{}
		took                        time.Duration
		problems                    []string
		recoverByKind               = map[string][]time.Duration{}
		lease                       = map[string]time.Duration{"library": DefaultTiming.Lease, "sidecar": SidecarTTL}
		libraryEpisodes, sideEpisod int
	)
	forbidden := 0
	var apiBack []time.Duration
	takeByKind := map[string][]time.Duration{}
	for _, r := range s.Results {
		forbidden += r.Forbidden
		apiBack = append(apiBack, r.APIBack...)
		schedules[r.Kind]++
		took += r.Took
		rep := r.Report
		faults += rep.Faults
		overlaps += len(rep.Overlaps)
		viols += len(rep.Violations)
		tenures += len(rep.Intervals)
		writes += rep.Writes
		rejects += rep.Rejects
		for _, ep := range r.Schedule.Episodes {
			if r.Kind == "library" {
				libraryEpisodes++
			} else {
				sideEpisod++
			}
			for _, f := range ep.Faults {
				kinds[r.Kind+" "+string(f.Kind)]++
			}
		}
		for _, t := range rep.Takeovers {
			takeovers = append(takeovers, t.After)
			k := r.Kind + " " + faultKind(t.Fault.Detail)
			takeByKind[k] = append(takeByKind[k], t.After)
		}
		for _, rc := range rep.Recoveries {
			recovers = append(recovers, rc.After)
			f := strings.Fields(rc.Heal.Detail)
			k := r.Kind
			if len(f) == 3 {
				k += " " + f[2]
			}
			recoverByKind[k] = append(recoverByKind[k], rc.After)
		}
		gaps = append(gaps, rep.Gaps...)
		for _, l := range r.Late {
			late = append(late, fmt.Sprintf("%s seed %d: %v after %q (lease %v)", r.Kind, r.Schedule.Seed, l.After.Round(time.Millisecond), l.Heal.Detail, lease[r.Kind]))
		}
		for code, n := range r.Exits {
			exits[code] += n
		}
		for _, p := range r.Problems {
			problems = append(problems, fmt.Sprintf("%s seed %d: %s", r.Kind, r.Schedule.Seed, p))
		}
	}

	fmt.Fprintf(w, "| | |\n|---|---|\n")
	fmt.Fprintf(w, "| schedules run | %d (%d library: 3 candidates, lease %v; %d sidecar: 3 replicas, --ttl=%v), %d episodes |\n",
		len(s.Results), schedules["library"], DefaultTiming.Lease, schedules["sidecar"], SidecarTTL, libraryEpisodes+sideEpisod)
	fmt.Fprintf(w, "| wall time | %v |\n", took.Round(time.Second))
	fmt.Fprintf(w, "| faults injected | %d |\n", faults)
	fmt.Fprintf(w, "| overlaps found | %d (%d overlapping tenures, %d detector violations) |\n", overlaps+viols, overlaps, viols)
	fmt.Fprintf(w, "| schedules with problems | %d |\n", s.Failed())
	fmt.Fprintf(w, "| tenures | %d |\n", tenures)
	fmt.Fprintf(w, "| takeover time after a fault deposed the leader (n=%d) | %s |\n", len(takeovers), percentiles(takeovers))
	fmt.Fprintf(w, "| time to a leader after each heal (n=%d) | %s |\n", len(recovers), percentiles(recovers))
	within := 0
	for _, r := range s.Results {
		for _, rc := range r.Report.Recoveries {
			if rc.After <= lease[r.Kind]+Bound {
				within++
			}
		}
	}
	fmt.Fprintf(w, "| heals followed by a leader within lease + 1 s | %d of %d |\n", within, len(recovers))
	fmt.Fprintf(w, "| leaderless gaps between tenures (n=%d) | %s |\n", len(gaps), percentiles(gaps))
	if len(apiBack) > 0 {
		fmt.Fprintf(w, "| kube-apiserver writing again after etcd was healthy (n=%d; heals of etcd restarts are recorded after it) | %s |\n", len(apiBack), percentiles(apiBack))
	}
	if forbidden > 0 {
		fmt.Fprintf(w, "| library Runs ended by a 403 (a failure: every candidate had access) | %d |\n", forbidden)
	}
	if writes+rejects > 0 {
		fmt.Fprintf(w, "| fenced store | %d writes accepted, %d rejected |\n", writes, rejects)
	}

	fmt.Fprintf(w, "\nFaults by kind:\n\n| fault | injected |\n|---|---|\n")
	for _, k := range sortedKeys(kinds) {
		fmt.Fprintf(w, "| %s | %d |\n", k, kinds[k])
	}
	fmt.Fprintf(w, "\nTime to a leader after the heal, by the episode's first fault:\n\n| episode | n | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|\n")
	for _, k := range sortedKeys(recoverByKind) {
		ds := recoverByKind[k]
		fmt.Fprintf(w, "| %s | %d | %v | %v | %v | %v |\n", k, len(ds),
			round(history.Percentile(ds, 50)), round(history.Percentile(ds, 90)), round(history.Percentile(ds, 99)), round(history.Percentile(ds, 100)))
	}
	fmt.Fprintf(w, "\nTakeover time (from the fault to the next tenure) when the fault deposed the leader, by fault:\n\n| fault | n | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|\n")
	for _, k := range sortedKeys(takeByKind) {
		ds := takeByKind[k]
		fmt.Fprintf(w, "| %s | %d | %v | %v | %v | %v |\n", k, len(ds),
			round(history.Percentile(ds, 50)), round(history.Percentile(ds, 90)), round(history.Percentile(ds, 99)), round(history.Percentile(ds, 100)))
	}
	if len(exits) > 0 {
		fmt.Fprintf(w, "\nSidecar exit codes (each exit is restarted): ")
		var parts []string
		for _, c := range sortedKeys(exits) {
			parts = append(parts, fmt.Sprintf("%d×%d", c, exits[c]))
		}
		fmt.Fprintln(w, strings.Join(parts, ", "))
	}
	if len(late) > 0 {
		fmt.Fprintf(w, "\nSlower than lease + 1 s after a heal (%d):\n\n", len(late))
		for _, l := range late {
			fmt.Fprintf(w, "- %s\n", l)
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(w, "\nProblems (%d):\n\n", len(problems))
		for _, p := range problems {
			fmt.Fprintf(w, "- %s\n", p)
		}
	}
}

// faultKind is the kind in a fault's description, "blackhole(leader)=...".
func faultKind(desc string) string {
	if i := strings.IndexAny(desc, "(=@ "); i >= 0 {
		return desc[:i]
	}
	return desc
}

func episodeKind(ep Episode) string {
	if len(ep.Faults) == 0 {
		return "none"
	}
	return string(ep.Faults[0].Kind)
}

func percentiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	return fmt.Sprintf("p50 %v, p90 %v, p99 %v, max %v", round(history.Percentile(ds, 50)), round(history.Percentile(ds, 90)),
		round(history.Percentile(ds, 99)), round(history.Percentile(ds, 100)))
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }

func sortedKeys[K interface{ ~string | ~int }, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return slices.Clip(ks)
}
