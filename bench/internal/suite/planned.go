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
	"time"

	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/bench/internal/candidate"
)

// plannedCandidates is the number of candidates of each planned-handoff
// variant: the leader, the named target and a bystander.
const plannedCandidates = 3

// runPlanned: an operator writes a planned-handoff request naming a
// candidate (elector.RequestHandoff, as kubectl elector handoff does);
// measured from the moment the request was written until the target's
// leader work starts. Three elector candidates per variant, library and
// sidecar, handing the Lease round the ring. Beside them, the way to move
// a client-go leader today: delete its Pod, i.e. SIGTERM to the client-go
// sidecar (ReleaseOnCancel), measured until the other replica leads, with
// the graceful-handoff runner.
func runPlanned(ctx context.Context, e *env, res *results) error {
	et, err := e.electorTiming(ctx, 0)
	if err != nil {
		return err
	}
	res.sidecarTiming = et
	retry := max(et.Retry, candidate.Common.Retry)
	var rs []runner
	ns, err := e.namespace(ctx, "planned-lib")
	if err != nil {
		return err
	}
	lib := &plannedLibRunner{e: e, retry: retry, ns: ns, lease: "planned"}
	if ns, err = e.namespace(ctx, "planned-sidecar"); err != nil {
		return err
	}
	side := &plannedProcRunner{e: e, s: electorSidecar(e, 0, et), retry: retry, ns: ns, lease: "planned"}
	if ns, err = e.namespace(ctx, "planned-clientgo"); err != nil {
		return err
	}
	cg := &procRunner{e: e, s: clientGoSidecar(e, candidate.Common), mode: graceful, retry: retry, ns: ns, lease: "planned"}
	rs = append(rs, lib, side, cg)
	samples, failed := runTrials(ctx, e, e.opts.HandoffTrials, rs)
	durations := func(r runner, log bool) []time.Duration {
		var ds []time.Duration
		for _, s := range samples[r] {
			switch {
			case !log:
				ds = append(ds, s.d)
			case s.log != 0:
				ds = append(ds, s.log)
			}
		}
		return ds
	}
	res.planned = []latencyResult{
		{label: "library: request → target's work starts", impl: candidate.Elector, timing: candidate.Common, samples: durations(lib, false), err: failed[lib]},
		{label: "sidecar: request → target's `Became leader` line", impl: candidate.Elector, timing: et, samples: durations(side, false), err: failed[side]},
		{label: "sidecar: request → target named in the Lease", impl: candidate.Elector, timing: et, samples: durations(side, true), err: failed[side]},
		{label: "client-go sidecar: delete the leader Pod (SIGTERM) → new leader's `started leading` line", impl: candidate.ClientGo, timing: candidate.Common, samples: durations(cg, true), err: failed[cg]},
		{label: "client-go sidecar: delete the leader Pod (SIGTERM) → new holder in the Lease", impl: candidate.ClientGo, timing: candidate.Common, samples: durations(cg, false), err: failed[cg]},
	}
	return ctx.Err()
}

// requestHandoff writes a planned-handoff request for Lease ns/lease
// naming to, as the admin, and returns the start of the sample: the moment
// just before RequestHandoff ran, so that its GET and PUT are included, as
// an operator's tool would time it.
func (e *env) requestHandoff(ctx context.Context, ns, lease, to string) (time.Time, error) {
	leases := e.kube.CoordinationV1().Leases(ns)
	t0 := time.Now()
	if _, err := elector.RequestHandoff(ctx, leases, lease, to); err != nil {
		return t0, fmt.Errorf("unable to request a handoff to %s: %w", to, err)
	}
	return t0, nil
}

// plannedLibRunner runs three in-process elector candidates, each with
// its own client, and hands the Lease round them.
type plannedLibRunner struct {
	e      *env
	retry  time.Duration
	ns     string
	lease  string
	cands  [plannedCandidates]*libCand
	leader int
}

func (r *plannedLibRunner) label() string { return "library elector (planned)" }

func (r *plannedLibRunner) setup(ctx context.Context) error {
	for i := range r.cands {
		id := fmt.Sprintf("elector-%d", i)
		lc := &libCand{started: make(chan time.Time, 4)}
		client, err := coordinationv1client.NewForConfig(candidate.RESTConfig(r.e.admin, candidate.Elector, candidate.Common, 0))
		if err != nil {
			return err
		}
		lc.c, err = candidate.Start(candidate.Options{
			Impl: candidate.Elector, Namespace: r.ns, Name: r.lease, Identity: id, Timing: candidate.Common, Client: client,
			OnStarted: func(at time.Time) {
				select {
				case lc.started <- at:
				default:
				}
			},
		})
		if err != nil {
			return err
		}
		r.cands[i] = lc
	}
	deadline := time.After(readyTimeout)
	for found := false; !found; {
		for i, lc := range r.cands {
			select {
			case <-lc.started:
				r.leader, found = i, true
			default:
			}
		}
		if found {
			break
		}
		select {
		case <-deadline:
			return fmt.Errorf("no candidate led within %v", readyTimeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return r.allKnow(ctx)
}

func (r *plannedLibRunner) allKnow(ctx context.Context) error {
	for _, lc := range r.cands {
		if err := waitKnows(ctx, lc.c, r.cands[r.leader].c.Identity()); err != nil {
			return err
		}
	}
	return nil
}

func (r *plannedLibRunner) trial(ctx context.Context) (sample, error) {
	next := (r.leader + 1) % plannedCandidates
	target := r.cands[next]
	sleepCtx(ctx, settle(r.e, r.retry))
	t0, err := r.e.requestHandoff(ctx, r.ns, r.lease, target.c.Identity())
	if err != nil {
		return sample{}, err
	}
	t1, err := waitStarted(ctx, target, readyTimeout)
	if err != nil {
		return sample{}, err
	}
	r.leader = next
	return sample{d: t1.Sub(t0)}, r.allKnow(ctx)
}

func (r *plannedLibRunner) teardown() {
	for _, lc := range r.cands {
		if lc != nil {
			lc.c.Stop()
		}
	}
	for _, lc := range r.cands {
		if lc != nil {
			<-lc.c.Done()
		}
	}
}

// plannedProcRunner runs three elector sidecars and hands the Lease round
// them. A sample's d is the target's "Became leader" log line (its leader
// work starts: the command in exec mode), log the moment the benchmark's
// watch sees the target named in the Lease (the old leader's transfer).
type plannedProcRunner struct {
	e      *env
	s      sidecar
	retry  time.Duration
	ns     string
	lease  string
	watch  *leaseWatcher
	procs  [plannedCandidates]*sidecarProc
	leader int
}

func (r *plannedProcRunner) label() string { return "sidecar elector (planned)" }

func (r *plannedProcRunner) setup(ctx context.Context) error {
	w, err := watchLeases(ctx, r.e.kube.CoordinationV1(), r.ns)
	if err != nil {
		return err
	}
	r.watch = w
	for i := range r.procs {
		p, err := r.e.startSidecar(r.s, r.ns, r.lease, fmt.Sprintf("elector-%d", i), r.e.direct)
		if err != nil {
			return err
		}
		r.procs[i] = p
	}
	ev, err := r.watch.waitHolder(ctx, r.lease, time.Time{}, func(h string) bool { return h != "" }, readyTimeout)
	if err != nil {
		return err
	}
	for i, p := range r.procs {
		if p.id == ev.holder {
			r.leader = i
		}
		if err := r.s.waitReady(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func (r *plannedProcRunner) trial(ctx context.Context) (sample, error) {
	next := (r.leader + 1) % plannedCandidates
	target := r.procs[next]
	sleepCtx(ctx, settle(r.e, r.retry))
	t0, err := r.e.requestHandoff(ctx, r.ns, r.lease, target.id)
	if err != nil {
		return sample{}, err
	}
	ev, err := r.watch.waitHolder(ctx, r.lease, t0, is(target.id), readyTimeout)
	if err != nil {
		return sample{}, target.failure(err.Error())
	}
	at, err := target.waitMarker(ctx, r.s.leadMarker, t0, readyTimeout)
	if err != nil {
		return sample{}, err
	}
	r.leader = next
	return sample{d: at.Sub(t0), log: ev.at.Sub(t0)}, nil
}

func (r *plannedProcRunner) teardown() {
	for _, p := range r.procs {
		if p != nil {
			_ = p.stop(exitTimeout)
		}
	}
	if r.watch != nil {
		r.watch.stop()
	}
}
