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
	"net"
	"sync"
	"time"

	"github.com/elector-dev/elector/bench/internal/candidate"
	"github.com/elector-dev/elector/bench/internal/stats"
)

// latencyResult is one variant of the handoff or crash scenario.
type latencyResult struct {
	label   string // "library", "sidecar (Lease)", "sidecar (log line)"
	impl    candidate.Impl
	timing  candidate.Timing
	samples []time.Duration
	err     error
}

func (l latencyResult) summary() stats.Summary { return stats.Summarize(l.samples) }

// crashTTL is the lease duration in the crash scenario: short, so that ten
// trials take a minute. Every variant uses the timing the elector sidecar
// derives from --ttl=4s.
const crashTTL = 4 * time.Second

// runHandoff: the leader is told to stop (context cancelled in-process,
// SIGTERM for a sidecar) and releases the Lease; measured until the other
// candidate starts acting. Library candidates and the client-go sidecar
// use 15s/10s/2s; the elector sidecar its default --ttl.
func runHandoff(ctx context.Context, e *env, res *results) error {
	et, err := e.electorTiming(ctx, 0)
	if err != nil {
		return err
	}
	res.sidecarTiming = et
	retry := max(et.Retry, candidate.Common.Retry)
	var rs []runner
	for _, impl := range []candidate.Impl{candidate.Elector, candidate.ClientGo} {
		ns, err := e.namespace(ctx, "handoff-lib")
		if err != nil {
			return err
		}
		rs = append(rs, &libRunner{e: e, impl: impl, timing: candidate.Common, mode: graceful, retry: retry, ns: ns, lease: "handoff"})
	}
	for _, s := range []sidecar{electorSidecar(e, 0, et), clientGoSidecar(e, candidate.Common)} {
		ns, err := e.namespace(ctx, "handoff-sidecar")
		if err != nil {
			return err
		}
		rs = append(rs, &procRunner{e: e, s: s, mode: graceful, retry: retry, ns: ns, lease: "handoff"})
	}
	samples, failed := runTrials(ctx, e, e.opts.HandoffTrials, rs)
	res.handoff = latencyResults(rs, samples, failed)
	return ctx.Err()
}

// runCrash: the leader stops without a word (SIGKILL for a sidecar; for
// a library candidate every further request of it is black-holed, which
// the API server cannot tell from a crash); measured until the other
// candidate starts acting, minus the lease duration. The four variants run
// at the same time, each on its own Lease: the waits are seconds long and
// the load they add is a few requests per second.
func runCrash(ctx context.Context, e *env, res *results) error {
	crashTiming, err := e.electorTiming(ctx, crashTTL)
	if err != nil {
		return err
	}
	res.crashTiming = crashTiming
	var rs []runner
	for _, impl := range []candidate.Impl{candidate.Elector, candidate.ClientGo} {
		ns, err := e.namespace(ctx, "crash-lib")
		if err != nil {
			return err
		}
		rs = append(rs, &libRunner{e: e, impl: impl, timing: crashTiming, mode: crash, retry: crashTiming.Retry, ns: ns, lease: "crash"})
	}
	for _, s := range []sidecar{electorSidecar(e, crashTTL, crashTiming), clientGoSidecar(e, crashTiming)} {
		ns, err := e.namespace(ctx, "crash-sidecar")
		if err != nil {
			return err
		}
		rs = append(rs, &procRunner{e: e, s: s, mode: crash, retry: crashTiming.Retry, ns: ns, lease: "crash"})
	}
	var (
		mu      sync.Mutex
		samples = map[runner][]sample{}
		failed  = map[runner]error{}
		wg      sync.WaitGroup
	)
	for _, r := range rs {
		wg.Go(func() {
			s, f := runTrials(ctx, e, e.opts.CrashTrials, []runner{r})
			mu.Lock()
			defer mu.Unlock()
			samples[r], failed[r] = s[r], f[r]
		})
	}
	wg.Wait()
	res.crash = latencyResults(rs, samples, failed)
	return ctx.Err()
}

// latencyResults turns runner samples into result rows: one per library
// runner, two per process runner (Lease watch and log line).
func latencyResults(rs []runner, samples map[runner][]sample, failed map[runner]error) []latencyResult {
	var out []latencyResult
	for _, r := range rs {
		var ds, logs []time.Duration
		for _, s := range samples[r] {
			ds = append(ds, s.d)
			if s.log != 0 {
				logs = append(logs, s.log)
			}
		}
		switch r := r.(type) {
		case *libRunner:
			out = append(out, latencyResult{label: "library: leader work starts", impl: r.impl, timing: r.timing, samples: ds, err: failed[r]})
		case *procRunner:
			out = append(out,
				latencyResult{label: "sidecar: new holder in the Lease", impl: r.s.impl, timing: r.s.timing, samples: ds, err: failed[r]},
				latencyResult{label: "sidecar: new leader's log line", impl: r.s.impl, timing: r.s.timing, samples: logs, err: failed[r]})
		}
	}
	return out
}

// freePort finds a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("unable to find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
