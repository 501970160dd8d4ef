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

package e2e

import (
	"encoding/json"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// familyRE finds the metric families of a Prometheus text exposition.
var familyRE = regexp.MustCompile(`(?m)^# TYPE (\S+) `)

// helpMetricRE finds the metrics `elector -h` lists under /metrics: an
// indented name, then its description.
var helpMetricRE = regexp.MustCompile(`(?m)^\s+([a-z][a-z0-9_]*_[a-z0-9_]+)\s{2}`)

// TestHelpListsEveryServedMetric scrapes the real binary on the real API
// server, as the leader of one election and as the only replica of a
// sharded group (so that the vectors written on assignment appear too),
// and checks both ways: every served metric is listed by `elector -h`
// (go_* and process_* as such), and every listed one is served. A failure
// names each metric; the list is helpMetrics in cmd/elector/help.go.
func TestHelpListsEveryServedMetric(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(electorBin, "-h").Output()
	if err != nil {
		t.Fatalf("elector -h: %v", err)
	}
	help := string(out)
	listed := map[string]bool{}
	for _, m := range helpMetricRE.FindAllStringSubmatch(help, -1) {
		if strings.HasPrefix(m[1], "elector_") || strings.HasPrefix(m[1], "leader_election_") {
			listed[m[1]] = true
		}
	}
	if len(listed) < 10 {
		t.Fatalf("found only %d metrics in elector -h; the parse is broken:\n%s", len(listed), help)
	}

	served := map[string]string{} // metric -> mode that served it
	scrape := func(mode string, r *sidecar.Replica) {
		t.Helper()
		resp, err := r.Get(ctx(t), "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range familyRE.FindAllStringSubmatch(string(resp.Body), -1) {
			if _, ok := served[m[1]]; !ok {
				served[m[1]] = mode
			}
		}
	}

	// One election, leading.
	n := setup(t, render(t, "base"))
	lease := election(t, render(t, "base"))
	one := start(t, n, "pod-one", sidecar.LocalArgs([]string{"--election=" + lease}, "--ttl="+ttl.String())...)
	agree(t, "pod-one", one)
	scrape("one election", one)

	// A sharded group of one replica, once it runs every shard.
	g := setup(t, render(t, "base"))
	if err := g.SetRole(ctx(t), "elector", rbac.SharedLeaseRules(), nil); err != nil {
		t.Fatal(err)
	}
	const k = 2
	sh := start(t, g, "pod-shards", sidecar.LocalArgs([]string{"--election=workers", "--shards=2"}, "--ttl="+ttl.String())...)
	c := ctx(t)
	for {
		resp, err := sh.Get(c, "/shards")
		var b shardsBody
		if err == nil && json.Unmarshal(resp.Body, &b) == nil && len(b.Running) == k {
			break
		}
		select {
		case <-sh.Done():
			t.Fatalf("the sharded replica exited with %d:\n%s", sh.ExitCode(), sh.Output())
		case <-c.Done():
			t.Fatalf("the sharded replica does not run its %d shards: %v %v", k, resp, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	scrape("--shards", sh)

	var names []string
	for name := range served {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		generic := (strings.HasPrefix(name, "go_") && strings.Contains(help, "go_*")) ||
			(strings.HasPrefix(name, "process_") && strings.Contains(help, "process_*"))
		if !listed[name] && !generic {
			t.Errorf("metric %s is served on /metrics (%s) but `elector -h` does not list it; add it to helpMetrics in cmd/elector/help.go", name, served[name])
		}
	}
	for name := range listed {
		if _, ok := served[name]; !ok {
			t.Errorf("`elector -h` lists metric %s, but neither one election nor a sharded group served it here", name)
		}
	}
	t.Logf("%d metric families served, %d elector metrics listed by -h", len(served), len(listed))
}
