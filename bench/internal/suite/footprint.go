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
	"os"
	"sync"
	"time"

	"github.com/elector-dev/elector/bench/internal/candidate"
	"github.com/elector-dev/elector/bench/internal/countproxy"
)

// footprintResult is one sidecar's footprint.
type footprintResult struct {
	impl     candidate.Impl
	timing   candidate.Timing
	binary   int64                 // bytes
	mem      [2]memory             // leader, follower: resident set at the end of the idle window
	cpu      [2]time.Duration      // leader, follower: CPU time during the idle window
	idle     time.Duration         // length of the idle window
	requests [2]map[string]float64 // leader, follower: Lease requests/s by verb while idle
	other    [2]float64            // leader, follower: other requests/s while idle
	startup  []time.Duration       // process start to holder of a fresh Lease
	err      error
}

// runFootprint: two replicas of each sidecar (leader, follower) idle
// together for the idle window, through the counting proxy; then the time
// from process start to leading a Lease that does not exist yet.
func runFootprint(ctx context.Context, e *env, res *results) error {
	et, err := e.electorTiming(ctx, 0)
	if err != nil {
		return err
	}
	res.sidecarTiming = et
	kinds := []sidecar{electorSidecar(e, 0, et), clientGoSidecar(e, candidate.Common)}
	out := make([]footprintResult, len(kinds))
	var wg sync.WaitGroup
	for i, s := range kinds {
		out[i] = footprintResult{impl: s.impl, timing: s.timing}
		if fi, err := os.Stat(s.bin); err == nil {
			out[i].binary = fi.Size()
		}
		wg.Go(func() { idleFootprint(ctx, e, s, &out[i]) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	e.logf("  idle footprint done; start-up trials")
	for t := range e.opts.StartTrials {
		for i, s := range kinds {
			if out[i].err != nil {
				continue
			}
			d, err := startToLeader(ctx, e, s, t)
			if err != nil {
				out[i].err = err
				continue
			}
			out[i].startup = append(out[i].startup, d)
		}
	}
	res.footprint = out
	return ctx.Err()
}

// settleBeforeIdle lets start-up work (permission checks, first
// allocations, the client-go follower's first polls) pass before the idle
// window.
const settleBeforeIdle = 10 * time.Second

func idleFootprint(ctx context.Context, e *env, s sidecar, r *footprintResult) {
	ns, err := e.namespace(ctx, "footprint")
	if err != nil {
		r.err = err
		return
	}
	const lease = "footprint"
	var ps [2]*sidecarProc
	defer func() {
		for _, p := range ps {
			if p != nil {
				_ = p.stop(exitTimeout)
			}
		}
	}()
	w, err := watchLeases(ctx, e.kube.CoordinationV1(), ns)
	if err != nil {
		r.err = err
		return
	}
	defer w.stop()
	for i, role := range []string{"leader", "follower"} {
		id := fmt.Sprintf("%s-%s", s.impl, role)
		kc, err := e.proxyKubeconfig(id)
		if err != nil {
			r.err = err
			return
		}
		if ps[i], err = e.startSidecar(s, ns, lease, id, kc); err != nil {
			r.err = err
			return
		}
		if i == 0 {
			if _, err := w.waitHolder(ctx, lease, time.Time{}, is(id), readyTimeout); err != nil {
				r.err = ps[i].failure(err.Error())
				return
			}
		} else if err := s.waitReady(ctx, ps[i]); err != nil {
			r.err = err
			return
		}
	}
	sleepCtx(ctx, settleBeforeIdle)
	var cpu0 [2]time.Duration
	for i, p := range ps {
		if _, cpu0[i], err = procStat(p.pid()); err != nil {
			r.err = fmt.Errorf("%s: %w", p.name, err)
			return
		}
	}
	c0, t0 := e.proxy.Counts(), time.Now()
	sleepCtx(ctx, e.opts.Idle)
	c1, t1 := e.proxy.Counts(), time.Now()
	r.idle = t1.Sub(t0)
	d := c1.Sub(c0)
	for i, p := range ps {
		mem, cpu, err := procStat(p.pid())
		if err != nil {
			r.err = fmt.Errorf("%s: %w", p.name, err)
			return
		}
		r.mem[i], r.cpu[i] = mem, cpu-cpu0[i]
		r.requests[i] = map[string]float64{}
		for verb, c := range d.ByVerb(func(k countproxy.Key) bool {
			return k.Tag == p.id && k.Resource == countproxy.ResourceLeases
		}) {
			r.requests[i][verb] = float64(c) / r.idle.Seconds()
		}
		other := d.ByVerb(func(k countproxy.Key) bool { return k.Tag == p.id && k.Resource != countproxy.ResourceLeases })
		for _, c := range other {
			r.other[i] += float64(c) / r.idle.Seconds()
		}
	}
	if h := w.holder(lease); h != ps[0].id {
		r.err = fmt.Errorf("the leader changed during the idle window (holder now %q)", h)
	}
}

// startToLeader starts one replica on a Lease that does not exist and
// returns the time from just before exec to the benchmark seeing it as the
// holder.
func startToLeader(ctx context.Context, e *env, s sidecar, trial int) (time.Duration, error) {
	ns, err := e.namespace(ctx, "start")
	if err != nil {
		return 0, err
	}
	w, err := watchLeases(ctx, e.kube.CoordinationV1(), ns)
	if err != nil {
		return 0, err
	}
	defer w.stop()
	id := fmt.Sprintf("%s-start-%d", s.impl, trial)
	p, err := e.startSidecar(s, ns, "fresh", id, e.direct)
	if err != nil {
		return 0, err
	}
	defer func() { _ = p.stop(exitTimeout) }() // a slow exit does not change what was measured
	ev, err := w.waitHolder(ctx, "fresh", time.Time{}, is(id), readyTimeout)
	if err != nil {
		return 0, p.failure(err.Error())
	}
	return ev.at.Sub(p.started), nil
}
