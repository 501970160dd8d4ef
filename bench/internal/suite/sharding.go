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
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/bench/internal/countproxy"
	"github.com/elector-dev/elector/shard"
)

// ScenarioSharding is the sharded-leadership scenario (package shard)
// beside one election per shard.
const ScenarioSharding = "sharding"

// Sharding designs.
const (
	designShard    = "shard: member Leases + assignment"
	designPerShard = "baseline: one Lease per shard"
)

// shardingQPS is the client-side rate limit of every replica in this
// scenario, high enough for the baseline's K renewals per retry period
// (256 / 2s) so that the limiter is not what is measured.
const shardingQPS = 500

// shardingBalanceTimeout bounds the wait for a balanced group after a
// step: two lease durations. The baseline has no balancing, so after a
// scale-up it is usually still unbalanced then.
const shardingBalanceTimeout = 2 * elector.DefaultLeaseDuration

// shardingStep is one step of the replica count.
type shardingStep struct {
	replicas  int
	balanced  bool          // every replica ran ⌊K/N⌋..⌈K/N⌉ and all K ran
	toBalance time.Duration // step → balanced (or the timeout)
	// registered: step → every replica is a live member in the view of
	// one of them (package shard only): the new replicas' own start-up
	// (clients, list, watch, member Lease), before any shard can move.
	registered         time.Duration
	scaleUp            bool // the step added replicas
	moved              int  // shard functions started after the step
	minOwned, maxOwned int
	overlaps           int // double ownership seen (must be 0)
	// Steady state, over the window after the step.
	window       time.Duration
	writesPerRep float64 // PUT+POST per second per replica (mean)
	maxWritesRep float64 // of the busiest replica
	readsPerRep  float64 // GET+LIST per second per replica
	nonOwnerReqs float64 // requests/s by replicas that own no shard
	watches      int
}

type shardingResult struct {
	design string
	k      int
	steps  []shardingStep
	err    error
}

// runSharding: K shards over N replicas in this process, N going through
// Options.ShardSteps (2 → 8 → 3), each replica with its own client counted
// at the proxy. After each step: time until balanced, shard functions
// started (moves), and over a window the API requests. The package shard
// design and the baseline (K elector elections per replica over one
// SharedWatch, first come first served) run one after the other.
func runSharding(ctx context.Context, e *env, res *results) error {
	for _, design := range []string{designShard, designPerShard} {
		r := measureSharding(ctx, e, design)
		res.sharding = append(res.sharding, r)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e.logf("  %s done", design)
	}
	return nil
}

// shardTracker records which replica runs each shard.
type shardTracker struct {
	mu       sync.Mutex
	acting   map[int]string
	starts   int
	overlaps int
}

func (t *shardTracker) fn(id string) func(ctx context.Context, i int) {
	return func(ctx context.Context, i int) {
		t.mu.Lock()
		t.starts++
		if _, ok := t.acting[i]; ok {
			t.overlaps++
		}
		t.acting[i] = id
		t.mu.Unlock()
		<-ctx.Done()
		t.mu.Lock()
		if t.acting[i] == id {
			delete(t.acting, i)
		}
		t.mu.Unlock()
	}
}

func (t *shardTracker) snapshot() (per map[string]int, running, starts, overlaps int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	per = map[string]int{}
	for _, id := range t.acting {
		per[id]++
	}
	return per, len(t.acting), t.starts, t.overlaps
}

// benchReplica is one replica of either design.
type benchReplica struct {
	id     string
	cancel context.CancelFunc
	done   chan struct{}
}

func measureSharding(ctx context.Context, e *env, design string) (r shardingResult) {
	k := e.opts.ShardK
	r = shardingResult{design: design, k: k}
	ns, err := e.namespace(ctx, "sharding")
	if err != nil {
		r.err = err
		return r
	}
	tr := &shardTracker{acting: map[int]string{}}
	live := map[string]*benchReplica{}
	groups := map[string]*shard.Shards{} // package shard's replicas, by id
	seq := 0
	defer func() {
		var wg sync.WaitGroup
		for _, rep := range live {
			rep.cancel()
			wg.Go(func() { <-rep.done })
		}
		wg.Wait()
	}()
	quiet := slog.New(slog.DiscardHandler)
	start := func() error {
		seq++
		id := fmt.Sprintf("replica-%d", seq)
		cfg := e.proxy.Config(e.admin, ns+"."+id)
		cfg.QPS, cfg.Burst = shardingQPS, 2*shardingQPS
		client, err := coordinationv1client.NewForConfig(cfg)
		if err != nil {
			return err
		}
		leases := client.Leases(ns)
		rctx, cancel := context.WithCancel(ctx)
		rep := &benchReplica{id: id, cancel: cancel, done: make(chan struct{})}
		work := tr.fn(id)
		switch design {
		case designShard:
			s, err := shard.New(shard.Config{Leases: leases, Namespace: ns, Group: "bench", Identity: id, Shards: k, Logger: quiet})
			if err != nil {
				cancel()
				return err
			}
			groups[id] = s
			go func() {
				defer close(rep.done)
				if err := s.Run(rctx, func(ctx context.Context, i int, _ elector.Term) error { work(ctx, i); return nil }); err != nil {
					e.logf("  %s: %v", id, err)
				}
			}()
		default:
			w := elector.NewSharedWatch(leases, ns, elector.SharedWatchOptions{Logger: quiet})
			var wg sync.WaitGroup
			for i := range k {
				el, err := elector.New(elector.Config{Leases: leases, Namespace: ns, Name: fmt.Sprintf("shard-%d", i), Identity: id, Watch: w, Logger: quiet})
				if err != nil {
					cancel()
					return err
				}
				wg.Go(func() {
					for rctx.Err() == nil {
						_ = el.Run(rctx, func(ctx context.Context, _ elector.Term) error { work(ctx, i); return nil })
					}
				})
			}
			go func() {
				defer close(rep.done)
				wg.Wait()
			}()
		}
		live[id] = rep
		return nil
	}
	stop := func(n int) {
		var ids []string
		for id := range live {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		var wg sync.WaitGroup
		for _, id := range ids[:n] {
			rep := live[id]
			delete(live, id)
			delete(groups, id)
			rep.cancel()
			wg.Go(func() { <-rep.done })
		}
		wg.Wait()
	}

	for _, n := range e.opts.ShardSteps {
		_, _, starts0, _ := tr.snapshot()
		t0 := time.Now()
		scaledUp := n > len(live)
		switch {
		case n > len(live):
			for len(live) < n {
				if err := start(); err != nil {
					r.err = err
					return r
				}
			}
		case n < len(live):
			stop(len(live) - n) // SIGTERM-like: all at once, each hands its shards on
		}
		st := shardingStep{replicas: n, scaleUp: scaledUp}
		// Until balanced, or the timeout.
		for {
			if st.registered == 0 && design == designShard && allRegistered(groups) {
				st.registered = time.Since(t0)
			}
			per, running, _, _ := tr.snapshot()
			ok := running == k
			for id := range live {
				if per[id] < k/n || per[id] > (k+n-1)/n {
					ok = false
				}
			}
			if ok {
				st.balanced, st.toBalance = true, time.Since(t0)
				break
			}
			if time.Since(t0) > shardingBalanceTimeout || ctx.Err() != nil {
				st.toBalance = time.Since(t0)
				break
			}
			sleepCtx(ctx, 5*time.Millisecond)
		}
		// The steady window.
		sleepCtx(ctx, e.opts.ShardWarmup)
		c0, w0 := e.proxy.Counts(), time.Now()
		sleepCtx(ctx, e.opts.ShardWindow)
		c1, w1 := e.proxy.Counts(), time.Now()
		if ctx.Err() != nil {
			r.err = ctx.Err()
			return r
		}
		per, _, starts, overlaps := tr.snapshot()
		st.moved = starts - starts0
		st.overlaps = overlaps
		st.minOwned, st.maxOwned = k, 0
		for id := range live {
			st.minOwned, st.maxOwned = min(st.minOwned, per[id]), max(st.maxOwned, per[id])
		}
		st.window = w1.Sub(w0)
		secs := st.window.Seconds()
		d := c1.Sub(c0)
		inNS := func(k countproxy.Key) bool {
			return k.Namespace == ns && k.Resource == countproxy.ResourceLeases
		}
		var writes, reads, nonOwner float64
		for id := range live {
			byVerb := d.ByVerb(func(k countproxy.Key) bool { return inNS(k) && k.Tag == ns+"."+id })
			w := float64(byVerb[countproxy.VerbUpdate]+byVerb[countproxy.VerbCreate]) / secs
			writes += w
			st.maxWritesRep = max(st.maxWritesRep, w)
			reads += float64(byVerb[countproxy.VerbGet]+byVerb[countproxy.VerbList]) / secs
			if per[id] == 0 {
				var all int64
				for _, v := range byVerb {
					all += v
				}
				nonOwner += float64(all) / secs
			}
		}
		st.writesPerRep, st.readsPerRep, st.nonOwnerReqs = writes/float64(n), reads/float64(n), nonOwner
		st.watches = e.proxy.OpenWatches(inNS)
		r.steps = append(r.steps, st)
		e.logf("  %s: %d replicas: balanced=%v in %v, %d moved, owned %d..%d, %.2f writes/s per replica, %d overlaps",
			design, n, st.balanced, st.toBalance.Round(time.Millisecond), st.moved, st.minOwned, st.maxOwned, st.writesPerRep, st.overlaps)
		if overlaps > 0 {
			r.err = fmt.Errorf("%s: %d double ownerships", design, overlaps)
		}
		if design == designShard && !st.balanced {
			r.err = fmt.Errorf("%s: %d replicas not balanced within %v (%d..%d shards each)", design, n, shardingBalanceTimeout, st.minOwned, st.maxOwned)
		}
	}
	return r
}

// allRegistered reports whether one replica's view lists every replica
// as a live member.
func allRegistered(groups map[string]*shard.Shards) bool {
	for _, s := range groups {
		seen := map[string]bool{}
		for _, m := range s.Assignment().Members {
			if m.Live {
				seen[m.Identity] = true
			}
		}
		for id := range groups {
			if !seen[id] {
				return false
			}
		}
		return true
	}
	return false
}

func renderSharding(m *md, r *results) {
	if len(r.sharding) == 0 {
		return
	}
	k := r.sharding[0].k
	var steps []string
	for _, n := range r.opts.ShardSteps {
		steps = append(steps, fmt.Sprint(n))
	}
	m.p("## Sharding: K = %d shards over N = %s replicas", k, strings.Join(steps, " → "))
	m.p("")
	m.p("Replicas in one process, each with its own client (QPS %d) counted at the proxy; elector's default timings (15s / 10s / 2s). A scale-down stops the replicas at once, as a Deployment's SIGTERM does. **shard** is package shard (a member Lease per replica, a coordinator election, one assignment Lease); the **baseline** is one elector election per shard, K per replica over one SharedWatch (first come, first served, as Knative's buckets). *Balanced*: every replica runs ⌊K/N⌋ or ⌈K/N⌉ shards and all K run; *balanced in* counts from the step, so a scale-up includes the new replicas' own start-up (clients, list, watch, member Lease), given apart; *moved*: shard functions started after the step; requests over a %v window after a %v warm-up.", shardingQPS, r.opts.ShardWindow, r.opts.ShardWarmup)
	m.p("")
	m.header("design", "N", "balanced in", "moved", "shards per replica", "writes/s per replica", "busiest replica writes/s", "reads/s per replica", "requests/s by replicas owning nothing", "watches", "double ownership")
	for _, s := range r.sharding {
		for _, st := range s.steps {
			bal := "not within " + shardingBalanceTimeout.String()
			if st.balanced {
				bal = dur(st.toBalance)
				if st.scaleUp && st.registered > 0 && st.registered < st.toBalance {
					bal += fmt.Sprintf(" (%s after the last replica registered)", dur(st.toBalance-st.registered))
				}
			}
			m.row(s.design, fmt.Sprint(st.replicas), bal, fmt.Sprint(st.moved), fmt.Sprintf("%d–%d", st.minOwned, st.maxOwned),
				fmt.Sprintf("%.2f", st.writesPerRep), fmt.Sprintf("%.2f", st.maxWritesRep), fmt.Sprintf("%.2f", st.readsPerRep),
				fmt.Sprintf("%.2f", st.nonOwnerReqs), fmt.Sprint(st.watches), fmt.Sprint(st.overlaps))
		}
		if s.err != nil {
			m.row(s.design, "failed", "", "", "", "", "", "", "", "", oneLine(s.err.Error()))
		}
	}
	m.p("")
	m.p("Steady-state writes of package shard are one member renewal per replica per retry period plus the coordinator's, whatever K is; the baseline renews every shard's Lease (K / 2s in all). The baseline never moves a held shard to a new replica, so a scale-up leaves the new replicas idle.")
	m.p("")
}
