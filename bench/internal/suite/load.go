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
	"sync"
	"time"

	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/elector-dev/elector/bench/internal/candidate"
	"github.com/elector-dev/elector/bench/internal/countproxy"
)

// loadResult is the steady-state API load of one election of N candidates.
type loadResult struct {
	impl     candidate.Impl
	n        int
	window   time.Duration
	total    map[string]float64 // requests/s by verb, all candidates
	leader   map[string]float64 // requests/s by verb, the leader
	follower map[string]float64 // requests/s by verb, all followers together
	watches  int                // watches open at the end of the window
	changed  bool               // the leader changed during the window
	err      error
}

// sum adds up requests/s over all verbs.
func sum(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// writes adds up PUT, POST and PATCH requests/s.
func writes(m map[string]float64) float64 {
	return m[countproxy.VerbUpdate] + m[countproxy.VerbCreate] + m[countproxy.VerbPatch]
}

// runLoad: N library candidates of one Lease, each with its own client
// tagged at the counting proxy; after all know the leader and a warm-up,
// the requests of a window are counted. elector and client-go run at the
// same time on separate Leases, for each N in turn.
func runLoad(ctx context.Context, e *env, res *results) error {
	for _, n := range e.opts.LoadSizes {
		var (
			wg sync.WaitGroup
			mu sync.Mutex
		)
		for _, impl := range []candidate.Impl{candidate.Elector, candidate.ClientGo} {
			wg.Go(func() {
				r := measureLoad(ctx, e, impl, n)
				mu.Lock()
				res.load = append(res.load, r)
				mu.Unlock()
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e.logf("  %d candidates done", n)
	}
	return nil
}

func measureLoad(ctx context.Context, e *env, impl candidate.Impl, n int) (r loadResult) {
	r = loadResult{impl: impl, n: n, window: e.opts.LoadWindow}
	ns, err := e.namespace(ctx, fmt.Sprintf("load-%d", n))
	if err != nil {
		r.err = err
		return r
	}
	const lease = "load"
	var (
		cands []*candidate.Candidate
		mu    sync.Mutex
		lead  string
	)
	defer func() {
		var wg sync.WaitGroup
		for _, c := range cands {
			wg.Go(func() { _ = c.StopWait(exitTimeout) })
		}
		wg.Wait()
	}()
	for i := range n {
		id := fmt.Sprintf("%s-%d-%d", impl, n, i)
		client, err := coordinationv1client.NewForConfig(candidate.RESTConfig(e.proxy.Config(e.admin, id), impl, candidate.Common, 0))
		if err != nil {
			r.err = err
			return r
		}
		c, err := candidate.Start(candidate.Options{
			Impl: impl, Namespace: ns, Name: lease, Identity: id, Timing: candidate.Common, Client: client,
			OnStarted: func(time.Time) {
				mu.Lock()
				lead = id
				mu.Unlock()
			},
		})
		if err != nil {
			r.err = err
			return r
		}
		cands = append(cands, c)
	}
	leader := func() string {
		mu.Lock()
		defer mu.Unlock()
		return lead
	}

	// Steady state: one leader, every candidate has read the Lease.
	deadline := time.Now().Add(readyTimeout + candidate.Common.Lease)
	for {
		l := leader()
		ready := l != ""
		for _, c := range cands {
			if ready && c.KnownLeader() != l {
				ready = false
			}
		}
		if ready {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.err = fmt.Errorf("%s, %d candidates: no steady state within %v", impl, n, readyTimeout+candidate.Common.Lease)
			return r
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
	sleepCtx(ctx, e.opts.LoadWarmup)
	l0 := leader()
	c0, t0 := e.proxy.Counts(), time.Now()
	sleepCtx(ctx, e.opts.LoadWindow)
	c1, t1 := e.proxy.Counts(), time.Now()
	if ctx.Err() != nil {
		r.err = ctx.Err()
		return r
	}
	inNS := func(k countproxy.Key) bool { return k.Namespace == ns && k.Resource == countproxy.ResourceLeases }
	r.watches = e.proxy.OpenWatches(inNS)
	r.changed = leader() != l0
	d := c1.Sub(c0)
	secs := t1.Sub(t0).Seconds()
	r.window = t1.Sub(t0)
	perSec := func(keep func(countproxy.Key) bool) map[string]float64 {
		m := map[string]float64{}
		for verb, c := range d.ByVerb(keep) {
			m[verb] = float64(c) / secs
		}
		return m
	}
	r.total = perSec(inNS)
	r.leader = perSec(func(k countproxy.Key) bool { return inNS(k) && k.Tag == l0 })
	r.follower = perSec(func(k countproxy.Key) bool { return inNS(k) && k.Tag != l0 })
	return r
}
