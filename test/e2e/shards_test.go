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
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// shardsBody is the part of GET /shards the test reads.
type shardsBody struct {
	Running []struct {
		Shard int   `json:"shard"`
		Token int64 `json:"token"`
	} `json:"running"`
	Table []struct {
		Owner string `json:"owner"`
	} `json:"table"`
	Error string `json:"error"`
}

// TestShardsExecModeOneCommandPerShard runs the sidecar with --shards=6 in
// exec mode: 3 replicas, then 4, then 3 again (one stopped by SIGTERM).
// Each replica runs the lock holder once per shard it owns, with
// $ELECTOR_SHARD and $ELECTOR_TOKEN; each shard has its own flock, so two
// commands of one shard at once is a violation the kernel reports. After
// each step every replica runs 1 or 2 shards and /shards agrees with the
// commands.
func TestShardsExecModeOneCommandPerShard(t *testing.T) {
	t.Parallel() // own namespace, processes and files: see main_test.go
	const k = 6
	m := render(t, "base")
	n := setup(t, m)
	// The Role the sidecar prints for --shards: a label-selected watch of
	// the namespace's Leases and member Leases named after identities.
	if err := n.SetRole(ctx(t), "elector", rbac.SharedLeaseRules(), nil); err != nil {
		t.Fatal(err)
	}
	self, env, lockLog := lockHolderCommand(t)
	dir := filepath.Dir(lockLog)
	args := append(sidecar.LocalArgs([]string{"--election=workers", "--http=0.0.0.0:4444", fmt.Sprintf("--shards=%d", k)}, "--ttl="+ttl.String()), "--", self)
	replicas := map[string]*sidecar.Replica{}
	startOne := func(pod string) {
		r, err := sidecar.Start(sidecar.Options{
			Binary: electorBin, Kubeconfig: n.Kubeconfig, PodName: pod, PodNamespace: n.Name,
			Args: args, Env: env, Log: t.Output(),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			r.Kill()
			if strings.Contains(r.Output(), "WARNING: DATA RACE") {
				t.Errorf("%s: the race detector found a data race in elector; see its output above", pod)
			}
		})
		replicas[pod] = r
	}
	// balanced waits until every replica reports 1 or 2 running shards
	// (K=6 over 3 or 4), all K together, and the table names the same
	// owners.
	balanced := func(what string) map[int]int64 {
		t.Helper()
		c := ctx(t)
		start := time.Now()
		for {
			per := map[string][]int{}
			tokens := map[int]int64{}
			total := 0
			ok := true
			for pod, r := range replicas {
				resp, err := r.Get(c, "/shards")
				var b shardsBody
				if err != nil || json.Unmarshal(resp.Body, &b) != nil || len(b.Table) != k {
					ok = false
					continue
				}
				for _, s := range b.Running {
					per[pod] = append(per[pod], s.Shard)
					tokens[s.Shard] = s.Token
					total++
					if b.Table[s.Shard].Owner != pod {
						ok = false
					}
				}
			}
			lo, hi := k/len(replicas), (k+len(replicas)-1)/len(replicas)
			for pod := range replicas {
				if len(per[pod]) < lo || len(per[pod]) > hi {
					ok = false
				}
			}
			if ok && total == k {
				t.Logf("%s: balanced %s after the step: %v", what, ms(time.Since(start)), per)
				return tokens
			}
			select {
			case <-c.Done():
				t.Fatalf("%s: not balanced: %v", what, per)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}

	for _, pod := range []string{"replica-0", "replica-1", "replica-2"} {
		startOne(pod)
	}
	balanced("3 replicas")
	startOne("replica-3")
	balanced("3 → 4")
	leaving := replicas["replica-0"]
	delete(replicas, "replica-0")
	if err := leaving.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := leaving.Wait(ctx(t)); err != nil || code != 0 {
		t.Fatalf("replica-0 after SIGTERM: exit %d, %v; want 0", code, err)
	}
	tokens := balanced("4 → 3 (SIGTERM)")
	// The last commands start shortly after their shards: wait for each
	// (a command stopped while it was still starting may log nothing).
	for s, tok := range tokens {
		commandStarted(t, fmt.Sprintf("%s.%d", lockLog, s), tok)
	}

	// Per shard: no violation, never two commands at once, and
	// $ELECTOR_TOKEN grows from command to command.
	for s := range k {
		data, err := os.ReadFile(fmt.Sprintf("%s.%d", lockLog, s))
		if err != nil {
			entries, _ := os.ReadDir(dir)
			t.Fatalf("shard %d: no command ever ran: %v (in %s: %v)", s, err, dir, entries)
		}
		var tokens []int
		running := 0
		for _, l := range parseLockLog(t, data) {
			switch l.what {
			case "start":
				tokens = append(tokens, l.token)
				running++
				if running > 1 {
					t.Errorf("shard %d: command %d started before the previous one stopped", s, l.token)
				}
			case "stop":
				running--
			default:
				t.Errorf("shard %d: two commands ran at once: %s", s, l.line)
			}
		}
		if !sort.IntsAreSorted(tokens) || len(tokens) == 0 {
			t.Errorf("shard %d: tokens %v must grow", s, tokens)
		}
		for i := 1; i < len(tokens); i++ {
			if tokens[i] == tokens[i-1] {
				t.Errorf("shard %d: token %d twice: %v", s, tokens[i], tokens)
			}
		}
		t.Logf("shard %d: commands with tokens %v", s, tokens)
	}
}
