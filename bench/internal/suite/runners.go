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
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/elector-dev/elector/bench/internal/candidate"
)

// Limits of the waits inside a trial: failure deadlines, not measurements.
const (
	readyTimeout = 30 * time.Second
	exitTimeout  = 20 * time.Second
)

// mode is how a trial ends the leader.
type mode int

const (
	graceful mode = iota // SIGTERM / cancel: the leader releases the Lease
	crash                // SIGKILL / all requests black-holed
)

// sample is the result of one trial.
type sample struct {
	d   time.Duration // the measurement
	log time.Duration // process runs: the same trial timed by the new leader's log line
}

// runner runs trials of one variant: two candidates of one Lease, the
// leader is ended, the other takes over, the ended one is replaced by a
// fresh candidate (a rolling update), and the next trial ends the new
// leader.
type runner interface {
	label() string
	setup(ctx context.Context) error
	trial(ctx context.Context) (sample, error)
	teardown()
}

// settle is the random pause before each trial. It decorrelates the moment
// the leader is ended from the candidates' timers: client-go's followers
// poll every RetryPeriod to 2.2 × RetryPeriod (jitter 1.2), and a fixed
// pause would always hit the same phase of that cycle. Every variant of a
// scenario gets the same pause, from the longest RetryPeriod among them.
func settle(e *env, retry time.Duration) time.Duration {
	return e.uniform(500*time.Millisecond, 500*time.Millisecond+retry*22/10)
}

// libRunner runs in-process candidates of elector or client-go.
type libRunner struct {
	e       *env
	impl    candidate.Impl
	timing  candidate.Timing
	mode    mode
	retry   time.Duration // for settle
	ns      string
	lease   string
	seq     int
	cur     [2]*libCand // cur[0] leads
	stopped sync.WaitGroup
}

type libCand struct {
	c       *candidate.Candidate
	started chan time.Time
	freeze  *candidate.Freezer
}

func (r *libRunner) label() string { return fmt.Sprintf("library %s", r.impl) }

func (r *libRunner) start() (*libCand, error) {
	r.seq++
	id := fmt.Sprintf("%s-%d", r.impl, r.seq)
	lc := &libCand{started: make(chan time.Time, 1), freeze: candidate.NewFreezer()}
	cfg := candidate.RESTConfig(r.e.admin, r.impl, r.timing, 0)
	cfg.WrapTransport = lc.freeze.Wrap
	client, err := coordinationv1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	lc.c, err = candidate.Start(candidate.Options{
		Impl: r.impl, Namespace: r.ns, Name: r.lease, Identity: id, Timing: r.timing, Client: client,
		OnStarted: func(at time.Time) {
			select {
			case lc.started <- at:
			default:
			}
		},
	})
	return lc, err
}

// waitKnows waits until c has read the Lease and names leader as holder.
func waitKnows(ctx context.Context, c *candidate.Candidate, leader string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for c.KnownLeader() != leader {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s does not see %s as leader after %v (sees %q)", c.Identity(), leader, readyTimeout, c.KnownLeader())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

func waitStarted(ctx context.Context, lc *libCand, timeout time.Duration) (time.Time, error) {
	select {
	case at := <-lc.started:
		return at, nil
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	case <-time.After(timeout):
		return time.Time{}, fmt.Errorf("%s did not start leading within %v", lc.c.Identity(), timeout)
	}
}

func (r *libRunner) setup(ctx context.Context) error {
	a, err := r.start()
	if err != nil {
		return err
	}
	r.cur[0] = a
	if _, err := waitStarted(ctx, a, readyTimeout); err != nil {
		return err
	}
	b, err := r.start()
	if err != nil {
		return err
	}
	r.cur[1] = b
	return waitKnows(ctx, b.c, a.c.Identity())
}

func (r *libRunner) trial(ctx context.Context) (sample, error) {
	leader, follower := r.cur[0], r.cur[1]
	sleepCtx(ctx, settle(r.e, r.retry))
	t0 := time.Now()
	var wait time.Duration
	if r.mode == graceful {
		leader.c.Stop()
		wait = readyTimeout
	} else {
		leader.freeze.Freeze()
		wait = r.timing.Lease + readyTimeout
	}
	t1, err := waitStarted(ctx, follower, wait)
	if err != nil {
		return sample{}, err
	}
	s := sample{d: t1.Sub(t0)}
	if r.mode == crash {
		s.d -= r.timing.Lease
		// A frozen candidate needs its request timeouts to run out.
		leader.c.Stop()
		r.stopped.Go(func() { <-leader.c.Done() })
	} else if err := leader.c.StopWait(exitTimeout); err != nil {
		return s, err
	}
	next, err := r.start()
	if err != nil {
		return s, err
	}
	r.cur = [2]*libCand{follower, next}
	return s, waitKnows(ctx, next.c, follower.c.Identity())
}

func (r *libRunner) teardown() {
	for _, lc := range r.cur {
		if lc != nil {
			lc.c.Stop()
			r.stopped.Go(func() { <-lc.c.Done() })
		}
	}
	r.stopped.Wait()
}

// sidecar describes how to run one sidecar binary.
type sidecar struct {
	impl   candidate.Impl
	bin    string
	timing candidate.Timing
	ttl    time.Duration // elector: --ttl; 0 = its default
	// leadMarker is printed by a new leader when its leader work starts.
	leadMarker string
	// readyMarker, if set, is printed once the Lease has been read;
	// otherwise readiness is polled on the sidecar's /readyz.
	readyMarker string
}

// electorSidecar describes cmd/elector with --ttl=ttl (0: its default).
// cmd/elector derives its renew deadline and retry period from --ttl; the
// benchmark does not assume the formula but reads the durations the
// binary logs at start (see electorTiming).
func electorSidecar(e *env, ttl time.Duration, t candidate.Timing) sidecar {
	return sidecar{impl: candidate.Elector, bin: e.bins.Elector, timing: t, ttl: ttl, leadMarker: "Became leader", readyMarker: ""}
}

// startingMarker is in the elector sidecar's first log line, which names
// its lease duration, renew deadline and retry period.
const startingMarker = "msg=Starting"

var timingField = regexp.MustCompile(`\b(leaseDuration|renewDeadline|retryPeriod)=("?)([0-9a-zµ.]+)`)

// parseStartingLine reads the durations of the elector sidecar's
// "Starting" log line (text format).
func parseStartingLine(line string) (candidate.Timing, error) {
	var t candidate.Timing
	for _, m := range timingField.FindAllStringSubmatch(line, -1) {
		d, err := time.ParseDuration(m[3])
		if err != nil {
			return t, fmt.Errorf("unable to parse %s=%s: %w", m[1], m[3], err)
		}
		switch m[1] {
		case "leaseDuration":
			t.Lease = d
		case "renewDeadline":
			t.Renew = d
		case "retryPeriod":
			t.Retry = d
		}
	}
	if t.Lease == 0 || t.Renew == 0 || t.Retry == 0 {
		return t, fmt.Errorf("no leaseDuration, renewDeadline and retryPeriod in %q", line)
	}
	return t, nil
}

// electorTiming runs the elector sidecar once with --ttl=ttl (0: its
// default) and returns the timing it reports.
func (e *env) electorTiming(ctx context.Context, ttl time.Duration) (candidate.Timing, error) {
	e.mu.Lock()
	t, ok := e.timings[ttl]
	e.mu.Unlock()
	if ok {
		return t, nil
	}
	ns, err := e.namespace(ctx, "probe")
	if err != nil {
		return t, err
	}
	s := electorSidecar(e, ttl, candidate.Timing{})
	p, err := e.startSidecar(s, ns, "probe", "probe", e.direct, startingMarker)
	if err != nil {
		return t, err
	}
	defer func() { _ = p.stop(exitTimeout) }() // a slow exit does not change what was measured
	if _, err := p.waitMarker(ctx, startingMarker, p.started, readyTimeout); err != nil {
		return t, err
	}
	line := p.lineWith(startingMarker)
	if t, err = parseStartingLine(line); err != nil {
		return t, p.failure(err.Error())
	}
	e.mu.Lock()
	e.timings[ttl] = t
	e.mu.Unlock()
	return t, nil
}

func clientGoSidecar(e *env, t candidate.Timing) sidecar {
	return sidecar{impl: candidate.ClientGo, bin: e.bins.ClientGo, timing: t, leadMarker: "started leading", readyMarker: "observed leader"}
}

// sidecarProc is one running sidecar.
type sidecarProc struct {
	*proc
	id       string
	httpPort int // elector: the --http port
}

// startSidecar starts one replica of s for Lease ns/name; extra markers
// are output lines to timestamp besides s's own.
func (e *env) startSidecar(s sidecar, ns, name, id, kubeconfig string, extra ...string) (*sidecarProc, error) {
	var args []string
	sp := &sidecarProc{id: id}
	switch s.impl {
	case candidate.Elector:
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		sp.httpPort = port
		args = []string{
			"--election=" + name, "--election-namespace=" + ns, "--id=" + id,
			"--kubeconfig=" + kubeconfig, "--http=127.0.0.1:" + strconv.Itoa(port),
		}
		if s.ttl != 0 {
			args = append(args, "--ttl="+s.ttl.String())
		}
	case candidate.ClientGo:
		args = []string{
			"--election=" + name, "--election-namespace=" + ns, "--id=" + id,
			"--kubeconfig=" + kubeconfig, "--lease-duration=" + s.timing.Lease.String(),
			"--renew-deadline=" + s.timing.Renew.String(), "--retry-period=" + s.timing.Retry.String(),
		}
	}
	markers := append([]string{s.leadMarker}, extra...)
	if s.readyMarker != "" {
		markers = append(markers, s.readyMarker)
	}
	p, err := e.procs.start(fmt.Sprintf("%s sidecar %s", s.impl, id), s.bin, args, markers, nil)
	if err != nil {
		return nil, err
	}
	sp.proc = p
	return sp, nil
}

// waitReady waits until the sidecar has read the Lease: the client-go
// sidecar says so on stdout, the elector sidecar's /readyz turns 200.
func (s sidecar) waitReady(ctx context.Context, p *sidecarProc) error {
	if s.readyMarker != "" {
		_, err := p.waitMarker(ctx, s.readyMarker, p.started, readyTimeout)
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", p.httpPort)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return p.failure(fmt.Sprintf("not ready within %v", readyTimeout))
		case <-p.exited:
			return p.failure(fmt.Sprintf("exited (%v) before it was ready", p.err))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// procRunner runs sidecar processes; the new leader is the one the
// benchmark's own watch of the Lease sees as holder.
type procRunner struct {
	e     *env
	s     sidecar
	mode  mode
	retry time.Duration // for settle
	ns    string
	lease string
	watch *leaseWatcher
	seq   int
	cur   [2]*sidecarProc // cur[0] leads
}

func (r *procRunner) label() string { return fmt.Sprintf("sidecar %s", r.s.impl) }

func (r *procRunner) start() (*sidecarProc, error) {
	r.seq++
	return r.e.startSidecar(r.s, r.ns, r.lease, fmt.Sprintf("%s-%d", r.s.impl, r.seq), r.e.direct)
}

func (r *procRunner) setup(ctx context.Context) error {
	w, err := watchLeases(ctx, r.e.kube.CoordinationV1(), r.ns)
	if err != nil {
		return err
	}
	r.watch = w
	a, err := r.start()
	if err != nil {
		return err
	}
	r.cur[0] = a
	if _, err := r.watch.waitHolder(ctx, r.lease, time.Time{}, is(a.id), readyTimeout); err != nil {
		return a.failure(err.Error())
	}
	b, err := r.start()
	if err != nil {
		return err
	}
	r.cur[1] = b
	return r.s.waitReady(ctx, b)
}

func (r *procRunner) trial(ctx context.Context) (sample, error) {
	leader, follower := r.cur[0], r.cur[1]
	sleepCtx(ctx, settle(r.e, r.retry))
	t0 := time.Now()
	wait := readyTimeout
	if r.mode == graceful {
		leader.signal(syscall.SIGTERM)
	} else {
		leader.signal(syscall.SIGKILL)
		wait += r.s.timing.Lease
	}
	ev, err := r.watch.waitHolder(ctx, r.lease, t0, is(follower.id), wait)
	if err != nil {
		return sample{}, follower.failure(err.Error())
	}
	s := sample{d: ev.at.Sub(t0)}
	if at, err := follower.waitMarker(ctx, r.s.leadMarker, t0, 5*time.Second); err == nil {
		s.log = at.Sub(t0)
	}
	if r.mode == crash {
		s.d -= r.s.timing.Lease
		s.log -= r.s.timing.Lease
	}
	if err := leader.stop(exitTimeout); err != nil {
		return s, err
	}
	next, err := r.start()
	if err != nil {
		return s, err
	}
	r.cur = [2]*sidecarProc{follower, next}
	return s, r.s.waitReady(ctx, next)
}

func (r *procRunner) teardown() {
	for _, p := range r.cur {
		if p != nil {
			_ = p.stop(exitTimeout)
		}
	}
	if r.watch != nil {
		r.watch.stop()
	}
}

// runTrials runs n trials of every runner, interleaved (trial i of each
// runner, then trial i+1), so that slow drifts of a noisy machine hit
// every variant alike. A runner that fails stops; the others go on.
func runTrials(ctx context.Context, e *env, n int, rs []runner) (map[runner][]sample, map[runner]error) {
	samples := map[runner][]sample{}
	failed := map[runner]error{}
	for _, r := range rs {
		if err := r.setup(ctx); err != nil {
			failed[r] = fmt.Errorf("setup: %w", err)
		}
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		for _, r := range rs {
			if failed[r] != nil || ctx.Err() != nil {
				continue
			}
			s, err := r.trial(ctx)
			if err != nil {
				failed[r] = fmt.Errorf("trial %d: %w", i+1, err)
				continue
			}
			samples[r] = append(samples[r], s)
		}
		var labels []string
		for _, r := range rs {
			labels = append(labels, r.label())
		}
		e.logf("  trial %d/%d done: %s", i+1, n, strings.Join(labels, ", "))
	}
	for _, r := range rs {
		r.teardown()
	}
	return samples, failed
}
