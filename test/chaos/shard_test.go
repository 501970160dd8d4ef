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
	"strings"
	"testing"
	"time"

	"github.com/elector-dev/elector/test/chaos/harness"
)

// TestShardedSchedule runs the sharded mode (package shard, K = 8) under
// 30 s of seeded faults — kube-apiserver restarts, scale up, SIGTERM,
// kills, partitions, latency, connection resets, every replica's clock
// skewed within the bound (seed 3 has each but latency and resets) — and
// checks each shard's record: no two tenures of one shard overlap, tokens
// grow, and after the heal the group is balanced again. The long run is
// make chaos (cmd/chaos -shard-schedules).
func TestShardedSchedule(t *testing.T) {
	const k = 8
	e := newEnv(t)
	res := harness.RunShardSchedule(t.Context(), e, harness.ShardOptions{
		Seed: 3, K: k, Replicas: 3, Faults: 30 * time.Second, Timing: harness.DefaultTiming,
	})
	t.Logf("seed %d: %v, faults [%s], %d shard functions started, %d tenures checked, balanced %v after the heal",
		res.Seed, res.Took.Round(time.Second), strings.Join(res.Faults, ", "), res.Starts, res.Tenures, res.Balanced.Round(time.Millisecond))
	for _, p := range res.Problems {
		t.Error(p)
	}
	if res.Tenures < k {
		t.Errorf("%d tenures over %d shards: the run did not exercise them", res.Tenures, k)
	}
}
