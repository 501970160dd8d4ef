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
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync"
	"time"

	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/shard"
	"github.com/elector-dev/elector/test/chaos/faultproxy"
	"github.com/elector-dev/elector/test/chaos/history"
	"github.com/elector-dev/elector/test/chaos/skewclock"
)

// ShardOptions configure a chaos run of the sharded mode (package shard).
type ShardOptions struct {
	Seed     uint64
	K        int           // shards
	Replicas int           // replicas at the start
	Faults   time.Duration // length of the fault phase
	Timing   Timing
}

// ShardResult is what a sharded run saw.
type ShardResult struct {
	Seed     uint64
	Took     time.Duration
	Faults   []string // injected, in order
	Starts   int      // shard functions started
	Tenures  int      // intervals checked, all shards
	Balanced time.Duration
	Problems []string // overlaps, violations, unexpected errors, no balance after the heal
}

// OK reports a run without problems.
func (r ShardResult) OK() bool { return len(r.Problems) == 0 }

// shardReplica is one replica: a shard.Shards in this process with its
// own fault proxy and its own clock (rate within the documented bound).
type shardReplica struct {
	id     string
	proxy  *faultproxy.Proxy
	cancel context.CancelFunc
	done   chan error
}

// RunShardSchedule runs K shards over replicas that a seeded schedule
// starts, stops (SIGTERM-like), kills (cut off, then ended without a
// word), partitions (blackhole), slows down (latency) and resets, while
// kube-apiserver restarts (always once, first), every
// replica with its own clock running fast or slow within the bound. Each
// shard has its own record (package history): a shard function begins
// and ends its tenure there, and takes up to half of StopGrace to stop,
// as real work does. After the fault phase everything heals: the group
// must be balanced within a few lease durations, and no shard's tenures
// may overlap.
func RunShardSchedule(ctx context.Context, e *Env, o ShardOptions) ShardResult {
	began := time.Now()
	res := ShardResult{Seed: o.Seed}
	problem := func(format string, args ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, args...)) }
	if err := e.grant(ctx, rbac.Role(e.NS, "elector-shards", rbac.SharedLeaseRules())); err != nil {
		problem("unable to grant the Role: %v", err)
		return res
	}
	recs := make([]*history.Recorder, o.K)
	for i := range recs {
		r, err := history.Create(filepath.Join(e.Dir, fmt.Sprintf("record-shard-%d", i)))
		if err != nil {
			problem("%v", err)
			return res
		}
		defer r.Close() //nolint:revive,gocritic // every record stays open until the schedule ends
		recs[i] = r
	}
	rng := rand.New(rand.NewPCG(o.Seed, 14))
	bound := skewclock.Bound(o.Timing.Lease, o.Timing.Renew)
	stopGrace := min(elector.DefaultStopGrace, (o.Timing.Renew-o.Timing.Retry)/2)

	var (
		mu      sync.Mutex
		acting  = map[int]string{}
		starts  int
		live    = map[string]*shardReplica{}
		seq     int
		runErrs []string
	)
	start := func() error {
		seq++
		id := fmt.Sprintf("shard-replica-%d", seq)
		p, err := faultproxy.New(e.apiAddr())
		if err != nil {
			return err
		}
		rc := e.via(p.Addr())
		rc.QPS, rc.Burst = 20, 30
		client, err := coordinationv1client.NewForConfig(rc)
		if err != nil {
			p.Close()
			return err
		}
		// Strictly inside the bound, at 90% of it at most.
		rate := 1 + (rng.Float64()*2-1)*bound*0.9
		clk := skewclock.New(rate, time.Duration(rng.Int64N(int64(time.Hour))))
		s, err := shard.New(shard.Config{
			Leases: client.Leases(e.NS), Namespace: e.NS, Group: "chaos", Identity: id, Shards: o.K,
			LeaseDuration: o.Timing.Lease, RenewDeadline: o.Timing.Renew, RetryPeriod: o.Timing.Retry,
			Clock:  clk,
			Logger: slog.New(slog.NewTextHandler(logWriter{e}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("replica", id),
		})
		if err != nil {
			p.Close()
			return err
		}
		stopRng := rand.New(rand.NewPCG(o.Seed, uint64(seq)))
		var rngMu sync.Mutex
		rctx, cancel := context.WithCancel(context.Background())
		r := &shardReplica{id: id, proxy: p, cancel: cancel, done: make(chan error, 1)}
		go func() {
			r.done <- s.Run(rctx, func(ctx context.Context, i int, term elector.Term) error {
				who, tok := id, int64(term.Token)
				if err := recs[i].Begin(who, tok); err != nil {
					e.Logf("OVERLAP on shard %d: %v", i, err)
				}
				mu.Lock()
				starts++
				acting[i] = id
				mu.Unlock()
				<-ctx.Done()
				rngMu.Lock()
				d := time.Duration(stopRng.Int64N(int64(stopGrace / 2)))
				rngMu.Unlock()
				time.Sleep(d) // stopping real work takes time
				mu.Lock()
				if acting[i] == id {
					delete(acting, i)
				}
				mu.Unlock()
				recs[i].End(who, tok)
				return nil
			})
			p.Close()
		}()
		mu.Lock()
		live[id] = r
		mu.Unlock()
		e.Logf("started %s (clock rate %.3f)", id, rate)
		return nil
	}
	end := func(r *shardReplica, how string) {
		mu.Lock()
		delete(live, r.id)
		mu.Unlock()
		r.cancel()
		if err := <-r.done; err != nil && how != "kill" {
			mu.Lock()
			runErrs = append(runErrs, fmt.Sprintf("%s: Run = %v", r.id, err))
			mu.Unlock()
		}
	}
	ids := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for id := range live {
			out = append(out, id)
		}
		sort.Strings(out)
		return out
	}
	replica := func(id string) *shardReplica {
		mu.Lock()
		defer mu.Unlock()
		return live[id]
	}
	defer func() {
		for _, id := range ids() {
			if r := replica(id); r != nil {
				r.proxy.Heal()
				end(r, "stop")
			}
		}
	}()

	for range o.Replicas {
		if err := start(); err != nil {
			problem("%v", err)
			return res
		}
	}
	wait := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	wait(o.Timing.Lease)

	// The fault phase: one fault at a time, held for a random part of a
	// few lease durations, then healed.
	deadline := time.Now().Add(o.Faults)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		cur := ids()
		hold := time.Duration(float64(o.Timing.Lease) * (0.3 + 1.7*rng.Float64()))
		pick := func() *shardReplica {
			if len(cur) == 0 {
				return nil
			}
			return replica(cur[rng.IntN(len(cur))])
		}
		var what string
		var heal func()
		x := rng.IntN(8)
		if len(res.Faults) == 0 {
			x = 6 // every schedule restarts the API server once, first
		}
		switch {
		case x == 0 && len(cur) < 6:
			what = "scale up"
			if err := start(); err != nil {
				problem("%v", err)
			}
		case x == 1 && len(cur) > 1:
			r := pick()
			what = "SIGTERM " + r.id
			end(r, "stop")
		case x == 2 && len(cur) > 1:
			// Killed: cut off first (its last requests never arrive),
			// then ended; it releases and hands on nothing.
			r := pick()
			what = "kill " + r.id
			r.proxy.Blackhole()
			end(r, "kill")
		case x == 3 && len(cur) > 0:
			r := pick()
			what = "partition " + r.id
			r.proxy.Blackhole()
			heal = r.proxy.Heal
		case x == 4 && len(cur) > 0:
			r := pick()
			what = "latency " + r.id
			r.proxy.Latency(o.Timing.Renew / 4)
			heal = r.proxy.Heal
		case x == 5 && len(cur) > 0:
			r := pick()
			what = "reset " + r.id
			r.proxy.Reset()
		case x == 6:
			what = "kube-apiserver restart"
			e.CP.StopAPIServer()
			heal = func() {
				if err := e.CP.StartAPIServer(context.WithoutCancel(ctx)); err != nil {
					problem("unable to start kube-apiserver again: %v", err)
				}
			}
		default:
			what = "calm"
		}
		res.Faults = append(res.Faults, what)
		for _, r := range recs {
			r.Fault("*", what)
		}
		e.Logf("fault: %s (hold %v)", what, hold.Round(time.Millisecond))
		if !wait(hold) {
			break
		}
		if heal != nil {
			heal()
		}
	}
	for len(ids()) < 2 {
		if err := start(); err != nil {
			problem("%v", err)
			return res
		}
	}
	for _, r := range recs {
		r.Heal("all faults healed")
	}

	// After the heal: balanced within a few lease durations.
	healed := time.Now()
	limit := 4 * o.Timing.Lease
	for {
		cur := ids()
		mu.Lock()
		per := map[string]int{}
		for _, id := range acting {
			per[id]++
		}
		running := len(acting)
		mu.Unlock()
		ok := running == o.K
		n := len(cur)
		for _, id := range cur {
			if per[id] < o.K/n || per[id] > (o.K+n-1)/n {
				ok = false
			}
		}
		if ok {
			res.Balanced = time.Since(healed)
			break
		}
		if time.Since(healed) > limit {
			problem("not balanced %v after the heal: %d of %d shards run, %v over %v", limit, running, o.K, per, cur)
			break
		}
		if !wait(20 * time.Millisecond) {
			break
		}
	}

	// Stop everyone (the deferred stop), then check every shard.
	for _, id := range ids() {
		if r := replica(id); r != nil {
			end(r, "stop")
		}
	}
	mu.Lock()
	res.Starts = starts
	res.Problems = append(res.Problems, runErrs...)
	mu.Unlock()
	for i := range recs {
		evs, err := history.Read(filepath.Join(e.Dir, fmt.Sprintf("record-shard-%d", i)))
		if err != nil {
			problem("shard %d: %v", i, err)
			continue
		}
		rep := history.Check(evs, history.Options{})
		res.Tenures += len(rep.Intervals)
		for _, ov := range rep.Overlaps {
			problem("shard %d: tenures overlap: %v", i, ov)
		}
		for _, v := range rep.Violations {
			problem("shard %d: %s", i, v.Detail)
		}
		// Tokens grow from tenure to tenure of one shard.
		var last int64 = -1
		lastWho := ""
		for _, in := range rep.Intervals {
			if in.Token < last || in.Token == last && in.Who != lastWho {
				problem("shard %d: token %d of %s after %d of %s", i, in.Token, in.Who, last, lastWho)
			}
			last, lastWho = in.Token, in.Who
		}
	}
	res.Took = time.Since(began)
	if ctx.Err() != nil {
		problem("%v", errors.Join(ctx.Err()))
	}
	return res
}
