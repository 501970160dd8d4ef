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

package kubectlelector

import (
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// TestShards: two sidecars of a sharded group (--shards=6); kubectl
// elector shards shows both members holding three shards each and every
// shard's owner and token, as an operator with the viewer Role; list
// shows the group as one row; watch reports replica-b leaving on
// scale-down under the group, with no anomaly.
func TestShards(t *testing.T) {
	n, lease := setup(t)
	workers := serviceAccount(t, n, "workers", rbac.SharedLeaseRules())
	replicas := map[string]*sidecar.Replica{}
	for _, pod := range []string{"replica-a", "replica-b"} {
		r, err := sidecar.Start(sidecar.Options{
			Binary: electorBin, Kubeconfig: workers.Kubeconfig, PodName: pod, PodNamespace: n.Name,
			Args: sidecar.LocalArgs([]string{"--election=workers", "--shards=6"}, "--ttl="+ttl.String()), Log: t.Output(),
		})
		if err != nil {
			t.Fatal(err)
		}
		replicas[pod] = r
		t.Cleanup(func() {
			r.Kill()
			if strings.Contains(r.Output(), "WARNING: DATA RACE") {
				t.Errorf("%s: the race detector found a data race in elector", pod)
			}
		})
	}
	op := serviceAccount(t, n, "operator", operatorRules(lease))
	rows := []*regexp.Regexp{
		regexp.MustCompile(`(?m)^Group ` + n.Name + `/workers: 6 shards, generation \d+\.$`),
		regexp.MustCompile(`(?m)^MEMBER\s+STATE\s+EPOCH\s+RENEWED\s+SHARDS$`),
		regexp.MustCompile(`(?m)^replica-a\s+held\s+0\s+\S+ ago\s+\d,\d,\d$`),
		regexp.MustCompile(`(?m)^replica-b\s+held\s+0\s+\S+ ago\s+\d,\d,\d$`),
		regexp.MustCompile(`(?m)^SHARD\s+OWNER\s+TOKEN\s+HANDOFF$`),
		regexp.MustCompile(`(?m)^5\s+replica-[ab]\s+\d+\s+-$`),
	}
	c := ctx(t)
	for {
		r := plugin(t, op, "shards", "workers")
		ok := r.code == 0
		for _, re := range rows {
			ok = ok && re.MatchString(r.stdout)
		}
		if ok {
			break
		}
		select {
		case <-c.Done():
			t.Fatalf("shards workers never showed two members with three shards each: %s", r)
		case <-time.After(500 * time.Millisecond):
		}
	}
	if r := plugin(t, op, "shards", "nobody"); r.code != 6 || !strings.Contains(r.stderr, `Lease "nobody-shards" not found`) {
		t.Errorf("shards nobody: %s", r)
	}
	if r := plugin(t, op, "shards"); r.code != 0 || !regexp.MustCompile(`(?m)^workers\s+6\s+\d+\s+2/2\s+replica-[ab]$`).MatchString(r.stdout) {
		t.Errorf("shards (the groups): %s", r)
	}
	if r := plugin(t, op, "shards", "workers", "-o", "name"); r.code != 0 || strings.Count(r.stdout, "lease.coordination.k8s.io/workers-") != 4 {
		t.Errorf("shards workers -o name: %s", r)
	}

	// list: one row for the group, none for its four Leases.
	r := plugin(t, op, "list")
	if r.code != 0 || !regexp.MustCompile(`(?m)^workers\s+replica-[ab]\s+sharded\s+held\s`).MatchString(r.stdout) ||
		strings.Contains(r.stdout, "workers-") {
		t.Errorf("list: want one row for the group workers and none for its Leases: %s", r)
	}
	if r := plugin(t, op, "list", "-o", "wide"); r.code != 0 || !regexp.MustCompile(`(?m)^workers\s.*\s2/2\s+6$`).MatchString(r.stdout) {
		t.Errorf("list -o wide: %s", r)
	}

	// Scale down: replica-b stops (SIGTERM, as the kubelet), hands its
	// shards on and releases its member Lease.
	lines := watchLines(t, op, "")
	lines.waitFor(t, regexp.MustCompile(`  `+n.Name+`/workers  member replica-b is in \(epoch \d+\)$`))
	b := replicas["replica-b"]
	if err := b.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := b.Wait(c); err != nil || code != 0 {
		t.Fatalf("replica-b after SIGTERM: exit %d, %v\n%s", code, err, b.Output())
	}
	lines.waitFor(t, regexp.MustCompile(`  `+n.Name+`/workers  member replica-b left: it released its member Lease \(epoch \d+\)$`))
	lines.waitFor(t, regexp.MustCompile(`  `+n.Name+`/workers  assignment generation \d+ of 6 shards: replica-a 0,1,2,3,4,5$`))
	// Longer than the lease duration: a released member Lease is no
	// anomaly.
	deadline := time.Now().Add(ttl + 3*time.Second)
	for time.Now().Before(deadline) {
		for _, l := range lines.all() {
			if strings.Contains(l, "ANOMALY") {
				t.Fatalf("watch reported an anomaly on scale-down: %s\n%s", l, strings.Join(lines.all(), "\n"))
			}
		}
		select {
		case <-c.Done():
			t.Fatal("the test ran out of time")
		case <-time.After(500 * time.Millisecond):
		}
	}
	if r := plugin(t, op, "list", "-o", "wide"); r.code != 0 || !regexp.MustCompile(`(?m)^workers\s.*\s1/2\s+6$`).MatchString(r.stdout) {
		t.Errorf("list -o wide after the scale-down: %s", r)
	}
}
