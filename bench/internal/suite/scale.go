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
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/elector-dev/elector/bench/internal/candidate"
	"github.com/elector-dev/elector/bench/internal/countproxy"
)

// manyStatus is cmd/many's report line.
type manyStatus struct {
	Leading    int    `json:"leading"`
	Known      int    `json:"known"`
	HeapInuse  uint64 `json:"heapInuse"`
	Sys        uint64 `json:"sys"`
	Goroutines int    `json:"goroutines"`
}

// scaleProc is the measurement of one cmd/many process.
type scaleProc struct {
	mem        memory
	heapInuse  uint64
	goroutines int
	requests   map[string]float64 // Lease requests/s by verb
	watches    int                // watches open at the end of the window
}

// scaleResult is one implementation in the scale scenario.
type scaleResult struct {
	impl    candidate.Impl
	n       int
	window  time.Duration
	acquire time.Duration // leader process start to leading all N
	// acquireRequests are the leader process's Lease requests from its
	// start until it led all N, by verb.
	acquireRequests map[string]int64
	// terminated counts the Lease watches kube-apiserver closed during
	// the window because their client fell behind; -1 if unknown.
	terminated int64
	leader     scaleProc // the process that leads all N elections
	follower   scaleProc // a second process, candidate in all N
	err        error
}

// runScale: one process campaigns in N elections and leads them all; a
// second one joins as follower of all N. Both go through the counting
// proxy; the window is counted after both are in steady state. elector
// uses one shared watch per process; client-go one LeaderElector per
// election on one client. The implementations run one after the other.
func runScale(ctx context.Context, e *env, res *results) error {
	for _, impl := range []candidate.Impl{candidate.Elector, candidate.ClientGo} {
		r := measureScale(ctx, e, impl)
		res.scale = append(res.scale, r)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e.logf("  %s done", impl)
	}
	return nil
}

// scaleSteady bounds the time to acquire or observe all N elections.
const scaleSteady = 3 * time.Minute

type manyProc struct {
	*proc
	tag    string
	mu     sync.Mutex
	status manyStatus
}

func (m *manyProc) latest() manyStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

func (e *env) startMany(impl candidate.Impl, ns, tag string) (*manyProc, error) {
	kc, err := e.proxyKubeconfig(tag)
	if err != nil {
		return nil, err
	}
	m := &manyProc{tag: tag}
	args := []string{
		"--impl=" + string(impl), "--n=" + strconv.Itoa(e.opts.ScaleN), "--namespace=" + ns,
		"--id=" + tag, "--kubeconfig=" + kc,
	}
	m.proc, err = e.procs.start("many "+tag, e.bins.Many, args, nil, func(_ time.Time, line string) {
		var s manyStatus
		if json.Unmarshal([]byte(line), &s) == nil {
			m.mu.Lock()
			m.status = s
			m.mu.Unlock()
		}
	})
	return m, err
}

// waitStatus waits until ok accepts the process's status.
func (m *manyProc) waitStatus(ctx context.Context, what string, ok func(manyStatus) bool) error {
	ctx, cancel := context.WithTimeout(ctx, scaleSteady)
	defer cancel()
	for !ok(m.latest()) {
		select {
		case <-ctx.Done():
			return m.failure(fmt.Sprintf("did not reach %s within %v (last status %+v)", what, scaleSteady, m.latest()))
		case <-m.exited:
			return m.failure(fmt.Sprintf("exited (%v) before %s", m.err, what))
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

func measureScale(ctx context.Context, e *env, impl candidate.Impl) (r scaleResult) {
	n := e.opts.ScaleN
	r = scaleResult{impl: impl, n: n}
	ns, err := e.namespace(ctx, "scale")
	if err != nil {
		r.err = err
		return r
	}
	var ps []*manyProc
	defer func() {
		for _, p := range ps {
			_ = p.stop(2 * scaleSteady)
		}
	}()
	leaderTag := fmt.Sprintf("%s-leader", impl)
	mine := func(tag string) func(countproxy.Key) bool {
		return func(k countproxy.Key) bool {
			return k.Tag == tag && k.Namespace == ns && k.Resource == countproxy.ResourceLeases
		}
	}
	before := e.proxy.Counts()
	lead, err := e.startMany(impl, ns, leaderTag)
	if err != nil {
		r.err = err
		return r
	}
	ps = append(ps, lead)
	if err := lead.waitStatus(ctx, fmt.Sprintf("leading %d elections", n), func(s manyStatus) bool { return s.Leading == n }); err != nil {
		r.err = err
		return r
	}
	r.acquire = time.Since(lead.started)
	r.acquireRequests = e.proxy.Counts().Sub(before).ByVerb(mine(leaderTag))
	follow, err := e.startMany(impl, ns, fmt.Sprintf("%s-follower", impl))
	if err != nil {
		r.err = err
		return r
	}
	ps = append(ps, follow)
	if err := follow.waitStatus(ctx, fmt.Sprintf("knowing the leader of %d elections", n), func(s manyStatus) bool { return s.Known == n }); err != nil {
		r.err = err
		return r
	}
	sleepCtx(ctx, 2*e.opts.LoadWarmup)
	term0 := terminatedLeaseWatchers(ctx, e.kube)
	c0, t0 := e.proxy.Counts(), time.Now()
	sleepCtx(ctx, e.opts.ScaleWindow)
	c1, t1 := e.proxy.Counts(), time.Now()
	if term1 := terminatedLeaseWatchers(ctx, e.kube); term0 >= 0 && term1 >= 0 {
		r.terminated = term1 - term0
	} else {
		r.terminated = -1
	}
	if ctx.Err() != nil {
		r.err = ctx.Err()
		return r
	}
	r.window = t1.Sub(t0)
	d := c1.Sub(c0)
	for i, p := range []*manyProc{lead, follow} {
		sp := &r.leader
		if i == 1 {
			sp = &r.follower
		}
		sp.requests = map[string]float64{}
		for verb, c := range d.ByVerb(mine(p.tag)) {
			sp.requests[verb] = float64(c) / r.window.Seconds()
		}
		sp.watches = e.proxy.OpenWatches(mine(p.tag))
		if sp.mem, _, err = procStat(p.pid()); err != nil {
			r.err = fmt.Errorf("%s: %w", p.name, err)
			return r
		}
		st := p.latest()
		sp.heapInuse, sp.goroutines = st.HeapInuse, st.Goroutines
	}
	if st := lead.latest(); st.Leading != n {
		r.err = fmt.Errorf("the leader process led %d of %d elections at the end of the window", st.Leading, n)
	}
	return r
}
