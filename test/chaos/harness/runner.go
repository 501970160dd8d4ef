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
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elector-dev/elector/test/chaos/faultproxy"
	"github.com/elector-dev/elector/test/chaos/history"
)

// Bound is the recovery bound: after every heal a leader acts
// again within the lease duration plus this.
const Bound = time.Second

// stable is how long a tenure must last after a heal to count as the
// leader being back (four renewals).
const stable = 2 * time.Second

// guard bounds waits that must end; it is a failure deadline, never a
// timing assertion.
const guard = 60 * time.Second

// Cluster is the candidates of one election: library candidates or
// sidecar replicas.
type Cluster struct {
	Env   *Env
	Lib   []*LibCandidate
	Reps  []*Replica
	Lease time.Duration
	// Margin is lease − renew deadline, the documented margin.
	Margin time.Duration

	tail    *history.Tail
	rng     *rand.Rand
	apiBack []time.Duration // etcd healthy to kube-apiserver writing again
}

// Result is the outcome of one schedule.
type Result struct {
	Kind     string // "library" or "sidecar"
	Schedule Schedule
	Report   history.Report
	// Problems fail the run: overlaps, detector violations, unexpected
	// errors of Run or exit codes, data races, heals without a leader.
	Problems []string
	// Late are the recoveries slower than lease + Bound.
	Late  []history.Recovery
	Exits map[int]int
	// Forbidden counts library Runs ended by a 403 from a starting
	// kube-apiserver (not a safety problem; see the report).
	Forbidden int
	// APIBack is, for each etcd restart, the time from etcd being healthy
	// to kube-apiserver writing again (the heal is recorded after it).
	APIBack []time.Duration
	Took    time.Duration
}

// OK reports whether the run found no problem (late recoveries are
// reported separately).
func (r *Result) OK() bool { return len(r.Problems) == 0 }

func (c *Cluster) ids() []string {
	var ids []string
	for _, l := range c.Lib {
		ids = append(ids, l.ID)
	}
	for _, r := range c.Reps {
		ids = append(ids, r.ID)
	}
	return ids
}

// Leader is who acts as leader now, according to the record.
func (c *Cluster) Leader() (string, time.Duration, bool) {
	if c.tail == nil {
		c.tail = history.NewTail(c.Env.Record)
	}
	_ = c.tail.Poll()
	var stale int64
	if len(c.Reps) > 0 {
		stale = int64(200 * time.Millisecond) // actors beat every 20ms
	}
	who, since, ok := c.tail.Leader(stale)
	return who, time.Duration(history.Now() - since), ok
}

// WaitLeader waits until a leader has acted for at least d, and returns
// it, or fails after timeout.
func (c *Cluster) WaitLeader(ctx context.Context, d, timeout time.Duration) (string, error) {
	return c.WaitLeaderIs(ctx, "", d, timeout)
}

// WaitLeaderIs waits until who ("" for anyone) has acted as leader for at
// least d, or fails after timeout.
func (c *Cluster) WaitLeaderIs(ctx context.Context, who string, d, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if got, since, ok := c.Leader(); ok && since >= d && (who == "" || got == who) {
			return got, nil
		}
		if time.Now().After(deadline) {
			if who == "" {
				who = "a leader"
			}
			return "", fmt.Errorf("no %s for %v within %v", who, d, timeout)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return "", err
		}
	}
}

// WaitStable waits until one tenure has been seen acting, without
// interruption, for d from now on (a tenure that ended a moment ago, such
// as a killed leader's, does not count), or fails after timeout.
func (c *Cluster) WaitStable(ctx context.Context, d, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	var (
		who     string
		since   time.Duration
		seen    time.Time
		tracked bool
	)
	for {
		got, s, ok := c.Leader()
		now := time.Now()
		switch {
		case !ok:
			tracked = false
		case !tracked || got != who || s < since:
			who, since, seen, tracked = got, s, now, true
		case now.Sub(seen) >= d:
			return who, nil
		default:
			since = s
		}
		if now.After(deadline) {
			return "", fmt.Errorf("no leader lasted %v within %v", d, timeout)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return "", err
		}
	}
}

// Run runs a schedule and stops every candidate at its end; the cluster
// cannot be used afterwards.
func (c *Cluster) Run(ctx context.Context, s Schedule) Result {
	start := time.Now()
	c.rng = rand.New(rand.NewPCG(s.Seed, 0x7267))
	res := Result{Kind: "library", Schedule: s, Exits: map[int]int{}}
	if len(c.Reps) > 0 {
		res.Kind = "sidecar"
	}
	c.Env.Logf("schedule %s", s)
	c.Env.Rec.Note("*", "schedule "+s.String())
	if _, err := c.WaitLeader(ctx, 0, guard); err != nil {
		res.Problems = append(res.Problems, "no first leader: "+err.Error())
	}
	for i, ep := range s.Episodes {
		if ctx.Err() != nil {
			break
		}
		if err := c.episode(ctx, i, ep); err != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("episode %d %s: %v", i, ep, err))
		}
		// Recovery: wait until a leader lasts; the checker measures it.
		if _, err := c.WaitStable(ctx, stable, c.Lease+guard); err != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("episode %d %s: %v after heal", i, ep, err))
		}
	}
	c.Env.Rec.Note("*", "end")
	res.Problems = append(res.Problems, c.stop()...)

	evs, err := history.Read(c.Env.Record)
	if err != nil {
		res.Problems = append(res.Problems, "unable to read the record: "+err.Error())
	}
	res.Report = history.Check(evs, history.Options{Stable: stable})
	for _, o := range res.Report.Overlaps {
		res.Problems = append(res.Problems, "overlap: "+o.String())
	}
	for _, v := range res.Report.Violations {
		res.Problems = append(res.Problems, "violation: "+v.String())
	}
	for _, h := range res.Report.Unrecovered {
		res.Problems = append(res.Problems, "no leader after heal: "+h.String())
	}
	for _, r := range res.Report.Recoveries {
		if r.After > c.Lease+Bound {
			res.Late = append(res.Late, r)
		}
	}
	for _, r := range c.Reps {
		for _, code := range r.Exits() {
			res.Exits[code]++
		}
	}
	for _, l := range c.Lib {
		res.Forbidden += l.Forbidden()
	}
	res.APIBack = c.apiBack
	res.Took = time.Since(start)
	return res
}

// stop stops every candidate and returns their unexpected errors.
func (c *Cluster) stop() []string {
	var (
		mu       sync.Mutex
		problems []string
		wg       sync.WaitGroup
	)
	for _, l := range c.Lib {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, err := range l.Stop() {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s: Run = %v", l.ID, err))
				mu.Unlock()
			}
		}()
	}
	for _, r := range c.Reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			exits := r.Stop()
			mu.Lock()
			defer mu.Unlock()
			// Exit 7 (overrun) is not a problem by itself: after its
			// elector was frozen past the renew deadline the library cannot
			// know that the watchdog stopped the command in time, and says
			// so. The actors' flock is what judges overlaps.
			for _, code := range exits {
				if code == exitRaceFail {
					problems = append(problems, fmt.Sprintf("%s: elector exited with %d (data race)", r.ID, code))
				}
			}
			if b, err := os.ReadFile(r.log.Name()); err == nil {
				if strings.Contains(string(b), "DATA RACE") {
					problems = append(problems, fmt.Sprintf("%s: data race in the sidecar, see %s", r.ID, r.log.Name()))
				}
				if strings.Contains(string(b), "panic:") {
					problems = append(problems, fmt.Sprintf("%s: panic in the sidecar, see %s", r.ID, r.log.Name()))
				}
			}
		}()
	}
	wg.Wait()
	if n := KillStragglers(c.Env); n > 0 {
		problems = append(problems, fmt.Sprintf("%d processes outlived their replica", n))
	}
	slices.Sort(problems)
	return problems
}

// episode injects the faults of ep, holds them and heals them all.
func (c *Cluster) episode(ctx context.Context, i int, ep Episode) error {
	start := time.Now()
	leader, _, hasLeader := c.Leader()
	used := map[string]bool{}
	var heals []func() error
	defer func() {
		// Heal in reverse order, also after an error.
		var errs []error
		for j := len(heals) - 1; j >= 0; j-- {
			errs = append(errs, heals[j]())
		}
		c.Env.Rec.Heal(fmt.Sprintf("episode %d %s", i, episodeKind(ep)))
		if err := errors.Join(errs...); err != nil {
			c.Env.Logf("heal of episode %d: %v", i, err)
		}
	}()
	for _, f := range ep.Faults {
		if err := sleep(ctx, time.Until(start.Add(f.Delay))); err != nil {
			return err
		}
		target := c.pick(f.Target, leader, hasLeader, used)
		used[target] = true
		c.Env.Logf("episode %d: %s on %s", i, f, target)
		c.Env.Rec.Fault(target, f.String())
		heal, err := c.inject(ctx, f, target)
		if heal != nil {
			heals = append(heals, heal)
		}
		if err != nil {
			return err
		}
	}
	return sleep(ctx, time.Until(start.Add(ep.Hold)))
}

// pick resolves a role to a candidate ID, "*" for All.
func (c *Cluster) pick(r Role, leader string, hasLeader bool, used map[string]bool) string {
	ids := c.ids()
	switch {
	case r == All:
		return "*"
	case r == Leader && hasLeader && !used[leader]:
		return leader
	}
	var pool []string
	for _, id := range ids {
		if !used[id] && (r != Follower || id != leader) {
			pool = append(pool, id)
		}
	}
	if len(pool) == 0 {
		pool = ids
	}
	return pool[c.rng.IntN(len(pool))]
}

func (c *Cluster) proxies(target string) []*faultproxy.Proxy {
	var ps []*faultproxy.Proxy
	for _, l := range c.Lib {
		if target == "*" || target == l.ID {
			ps = append(ps, l.Proxy)
		}
	}
	for _, r := range c.Reps {
		if target == "*" || target == r.ID {
			ps = append(ps, r.Proxy)
		}
	}
	return ps
}

func (c *Cluster) replica(target string) *Replica {
	for _, r := range c.Reps {
		if r.ID == target {
			return r
		}
	}
	return nil
}

// inject applies f to target and returns how to heal it.
func (c *Cluster) inject(ctx context.Context, f Fault, target string) (func() error, error) {
	cp := c.Env.CP
	ps := c.proxies(target)
	healProxies := func() error {
		for _, p := range ps {
			p.Heal()
		}
		return nil
	}
	switch f.Kind {
	case Blackhole, Partition:
		for _, p := range ps {
			p.Blackhole()
		}
		return healProxies, nil
	case Latency:
		for _, p := range ps {
			p.Latency(f.Latency)
		}
		return healProxies, nil
	case Reset:
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				for _, p := range ps {
					p.Reset()
				}
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(200+rand.IntN(300)) * time.Millisecond):
				}
			}
		}()
		return func() error { close(stop); <-done; return nil }, nil
	case RestartAPIServer:
		t0 := time.Now()
		cp.StopAPIServer()
		c.Env.Logf("kube-apiserver stopped in %v", time.Since(t0).Round(time.Millisecond))
		return func() error {
			t0 := time.Now()
			err := cp.StartAPIServer(context.WithoutCancel(ctx))
			c.Env.Logf("kube-apiserver ready in %v", time.Since(t0).Round(time.Millisecond))
			return err
		}, nil
	case RevokeRole:
		return c.Env.revoke(ctx)
	case Throttle:
		var ls []*LibCandidate
		for _, l := range c.Lib {
			if target == "*" || target == l.ID {
				l.throttled.Store(true)
				ls = append(ls, l)
			}
		}
		return func() error {
			for _, l := range ls {
				l.throttled.Store(false)
			}
			return nil
		}, nil
	case RestartEtcd:
		t0 := time.Now()
		cp.StopEtcd()
		c.Env.Logf("etcd stopped in %v", time.Since(t0).Round(time.Millisecond))
		return func() error {
			t0 := time.Now()
			if err := cp.StartEtcd(context.WithoutCancel(ctx)); err != nil {
				return err
			}
			c.Env.Logf("etcd healthy in %v", time.Since(t0).Round(time.Millisecond))
			// The fault is healed when the API server can write again: its
			// etcd client reconnects on its own schedule.
			t1 := time.Now()
			err := c.waitWrites(ctx)
			c.apiBack = append(c.apiBack, time.Since(t1))
			c.Env.Logf("kube-apiserver writes again %v after etcd is healthy", time.Since(t1).Round(time.Millisecond))
			return err
		}, nil
	}
	r := c.replica(target)
	if r == nil {
		return nil, fmt.Errorf("%s needs a sidecar replica, not %q", f.Kind, target)
	}
	switch f.Kind {
	case Kill:
		r.Kill()
		return nil, nil
	case KillReplica:
		r.KillAll()
		return nil, nil
	case PauseElector:
		r.PauseElector()
		return func() error { r.Cont(); return nil }, nil
	case PauseReplica:
		r.PauseAll()
		return func() error { r.Cont(); return nil }, nil
	}
	return nil, fmt.Errorf("unknown fault %q", f.Kind)
}

// waitWrites waits until the API server stores an object again.
func (c *Cluster) waitWrites(ctx context.Context) error {
	deadline := time.Now().Add(guard)
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "write-probe-"}}
		_, err := c.Env.Admin.CoreV1().ConfigMaps(c.Env.NS).Create(rctx, cm, metav1.CreateOptions{})
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("kube-apiserver does not write: %w", err)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
