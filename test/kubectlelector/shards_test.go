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
	"testing"
	"time"

	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// TestShards: two sidecars of a sharded group (--shards=6); kubectl
// elector shards shows both members holding three shards each and every
// shard's owner and token, as an operator with the viewer Role.
func TestShards(t *testing.T) {
	n, lease := setup(t)
	workers := serviceAccount(t, n, "workers", rbac.SharedLeaseRules())
	for _, pod := range []string{"replica-a", "replica-b"} {
		r, err := sidecar.Start(sidecar.Options{
			Binary: electorBin, Kubeconfig: workers.Kubeconfig, PodName: pod, PodNamespace: n.Name,
			Args: sidecar.LocalArgs([]string{"--election=workers", "--shards=6"}, "--ttl="+ttl.String()), Log: t.Output(),
		})
		if err != nil {
			t.Fatal(err)
		}
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
}
