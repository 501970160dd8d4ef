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

package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/migrate"
	"github.com/elector-dev/elector/shard"
)

type kind int

const (
	kindElector  kind = iota // a library candidate
	kindGuarded              // a library candidate whose work runs under migrate.Lock.Guard
	kindClientGo             // a client-go tools/leaderelection candidate
	kindShard                // a shard.Shards replica
	kindOperator             // kubectl elector and hands on the Lease
)

// discard is every product logger: the trace is the simulator's own.
var discard = slog.New(slog.DiscardHandler)

// hotLoop is how many requests one instance may send in one second of
// virtual time: far above any retry schedule, far below a loop without
// delay (one request per two milliseconds of simulated round trip).
const hotLoop = 100

// node is one replica, restarted with the same identity after a crash or
// a stop: each run of its process is an instance.
type node struct {
	sim    *Sim
	id     string
	kind   kind
	rate   float64 // clock rate against true time
	offset time.Duration
	lag    time.Duration // its watch streams delay each event by up to lag while faulty

	mu   sync.Mutex
	gen  int
	cur  *instance
	down bool
	up   chan struct{} // closed when the node may start again
}

// instance is one process of a node: it dies with its process.
type instance struct {
	node   *node
	gen    int
	client *client
	cancel context.CancelFunc
	born   time.Duration

	mu        sync.Mutex
	isDead    bool
	partUntil time.Duration
	seen      map[types.UID]bool // the incarnations of Leases it received
	terms     map[termKey]bool   // the terms of Leases it received
	maxSeen   map[string]int32   // the highest leaseTransitions it received, by Lease
	// term is, by Lease, its last successful write and what it knew
	// when it sent the first write of that holder, token and
	// incarnation: for a tenure's start, its acquisition (or, for the
	// target of a planned handoff, its first renewal).
	term      map[string]termWrite
	active    map[*tenureRec]bool
	lastEnd   time.Duration
	sec       time.Duration
	inSec     int
	steady    int
	cancelled time.Duration // when the current tenure's context ended; -1 if not
	returned  time.Duration // when its function returned; -1 if not
}

func (i *instance) name() string { return fmt.Sprintf("%s#%d", i.node.id, i.gen) }

func (i *instance) dead() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.isDead
}

func (i *instance) partitioned() bool {
	now := i.node.sim.now()
	i.mu.Lock()
	defer i.mu.Unlock()
	return now < i.partUntil
}

// saw records that the instance received l (a reply or a watch event):
// it knows of that incarnation of the Lease.
func (i *instance) saw(l *coordinationv1.Lease) {
	i.mu.Lock()
	first := !i.seen[l.UID]
	i.seen[l.UID] = true
	i.terms[termOf(l)] = true
	if tr := l.Spec.LeaseTransitions; tr != nil {
		if m, ok := i.maxSeen[l.Name]; !ok || *tr > m {
			i.maxSeen[l.Name] = *tr
		}
	}
	i.mu.Unlock()
	if first {
		i.node.sim.trace(i, "first sight of %s %s (rv=%s)", l.Name, l.UID, l.ResourceVersion)
	}
}

// knowledge is what an instance knew of a Lease at one moment.
type knowledge struct {
	max  int32 // the highest leaseTransitions it had received
	ok   bool  // it had received the Lease at all
	seen map[types.UID]bool
	// terms: the terms of Leases it had received
	terms map[termKey]bool
}

// termKey names a term of a Lease: holder, token and incarnation.
type termKey struct {
	holder      string
	transitions int32
	uid         types.UID
}

func termOf(l *coordinationv1.Lease) termKey {
	k := termKey{uid: l.UID}
	if h := l.Spec.HolderIdentity; h != nil {
		k.holder = *h
	}
	if tr := l.Spec.LeaseTransitions; tr != nil {
		k.transitions = *tr
	}
	return k
}

// termWrite is a write of a Lease by an instance, and what the instance
// knew when it began writing that holder, token and incarnation.
type termWrite struct {
	termKey
	knew knowledge
	// handed: the instance had received this term before it wrote it,
	// so it did not choose the token: a planned handoff's transfer,
	// written by the previous holder.
	handed bool
}

func (i *instance) knowledge(name string) knowledge {
	i.mu.Lock()
	defer i.mu.Unlock()
	m, ok := i.maxSeen[name]
	return knowledge{max: m, ok: ok, seen: maps.Clone(i.seen), terms: maps.Clone(i.terms)}
}

// wroteTo records a successful write of l, sent when the instance knew
// knew.
func (i *instance) wroteTo(l *coordinationv1.Lease, knew knowledge) {
	k := termOf(l)
	i.mu.Lock()
	defer i.mu.Unlock()
	if last, ok := i.term[l.Name]; ok && last.termKey == k {
		return // a renewal
	}
	i.term[l.Name] = termWrite{termKey: k, knew: knew, handed: knew.terms[k]}
}

// termOf returns the instance's last term write of name.
func (i *instance) termOf(name string) termWrite {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.term[name]
}

func (i *instance) began(r *tenureRec) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.active[r] = true
	i.cancelled, i.returned = -1, -1
}

func (i *instance) ended(r *tenureRec) {
	i.mu.Lock()
	defer i.mu.Unlock()
	delete(i.active, r)
	i.lastEnd = r.inst.node.sim.now()
}

// request accounts for one request: a hot loop, and requests of a
// follower in steady state, are violations.
func (i *instance) request(verb, name string) {
	s := i.node.sim
	now := s.now()
	i.mu.Lock()
	sec := now.Truncate(time.Second)
	if sec != i.sec {
		i.sec, i.inSec = sec, 0
	}
	i.inSec++
	hot := i.inSec == hotLoop
	steady := false
	if (i.node.kind == kindElector || i.node.kind == kindGuarded) && verb != "watch" && !strings.HasPrefix(verb, "old-") &&
		now >= s.cfg.faultsEnd+90*time.Second && len(i.active) == 0 &&
		now-i.lastEnd > leaseDuration && now-i.born > leaseDuration {
		i.steady++
		steady = i.steady == 3
	}
	i.mu.Unlock()
	if hot {
		s.violate("%s sent %d requests within one second (%s %s): a loop without backoff", i.name(), hotLoop, verb, name)
	}
	if steady {
		s.violate("%s, a follower, sent requests in steady state (%s %s), %v after faults stopped", i.name(), verb, name, now-s.cfg.faultsEnd)
	}
}

// kill ends the process at once: its functions stop now (a dead process
// does nothing), and its requests fail from now on.
func (i *instance) kill(why string) {
	i.mu.Lock()
	if i.isDead {
		i.mu.Unlock()
		return
	}
	i.isDead = true
	var rs []*tenureRec
	for r := range i.active {
		rs = append(rs, r)
	}
	i.mu.Unlock()
	i.node.sim.trace(i, "killed: %s", why)
	for _, r := range rs {
		i.node.sim.hist.end(r)
	}
	i.cancel()
}

func (i *instance) noteCancel() {
	now := i.node.sim.now()
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cancelled < 0 {
		i.cancelled = now
	}
}

func (i *instance) noteReturn() {
	now := i.node.sim.now()
	i.mu.Lock()
	defer i.mu.Unlock()
	i.returned = now
}

// falseOverrun reports whether the leader function returned within
// StopGrace of its context's end (or before it): then ErrStopOverrun is
// false.
func (i *instance) falseOverrun() (time.Duration, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.returned < 0 {
		return 0, false
	}
	if i.cancelled < 0 {
		return 0, true
	}
	took := i.returned - i.cancelled
	return took, took <= stopGrace*95/100
}

func (n *node) newInstance(ctx context.Context) (*instance, context.Context) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.gen++
	ictx, cancel := context.WithCancel(ctx)
	inst := &instance{
		node: n, gen: n.gen, cancel: cancel, born: n.sim.now(),
		seen: map[types.UID]bool{}, terms: map[termKey]bool{}, maxSeen: map[string]int32{}, term: map[string]termWrite{}, active: map[*tenureRec]bool{},
		cancelled: -1, returned: -1,
	}
	inst.client = &client{srv: n.sim.srv, inst: inst}
	n.cur = inst
	return inst, ictx
}

func (n *node) current() *instance {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cur
}

// setDown stops restarts of the node (down) or allows them again.
func (n *node) setDown(down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case down && !n.down:
		n.down, n.up = true, make(chan struct{})
	case !down && n.down:
		n.down = false
		close(n.up)
	}
}

// waitUp waits until the node may run.
func (n *node) waitUp(ctx context.Context) bool {
	n.mu.Lock()
	down, up := n.down, n.up
	n.mu.Unlock()
	if down {
		select {
		case <-up:
		case <-ctx.Done():
			return false
		}
	}
	return ctx.Err() == nil
}

// loop runs the node's processes until ctx ends, restarting each after
// it exits (as a kubelet does) unless the node is down.
func (n *node) loop(ctx context.Context) {
	s := n.sim
	for n.waitUp(ctx) {
		inst, ictx := n.newInstance(ctx)
		s.trace(inst, "process starts")
		var err error
		switch n.kind {
		case kindElector, kindGuarded:
			err = n.runElector(ictx, inst)
		case kindClientGo:
			err = n.runClientGo(ictx, inst)
		case kindShard:
			err = n.runShard(ictx, inst)
		}
		if !inst.dead() {
			s.trace(inst, "process exits: %v", err)
			if errors.Is(err, elector.ErrStopOverrun) && (n.kind == kindElector || n.kind == kindGuarded) {
				if took, bad := inst.falseOverrun(); bad {
					s.violate("%s: Run reported ErrStopOverrun though the leader function returned %v after its context ended (StopGrace %v): %v",
						inst.name(), took, stopGrace, err)
				}
			}
			inst.kill("exit")
		}
		if !sleep(ctx, s.dur(100*time.Millisecond, restartDelay)) {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// work is a leader function (or a shard's): it records its tenure, works
// until its context ends, then takes up to 90% of StopGrace to return.
// While faults are on it sometimes returns on its own, or ignores its
// context for two to four StopGraces.
func (n *node) work(ctx context.Context, inst *instance, key string, token int64) {
	s := n.sim
	r := s.hist.start(inst, key, token)
	defer s.hist.end(r)
	var own <-chan time.Time
	stuck := false
	if s.faulty() {
		if s.chance(0.05) {
			t := time.NewTimer(s.dur(time.Second, 30*time.Second))
			defer t.Stop()
			own = t.C
		}
		stuck = s.chance(s.cfg.stuck)
	}
	select {
	case <-ctx.Done():
	case <-own:
	}
	if ctx.Err() == nil {
		inst.noteReturn()
		return
	}
	d := s.dur(0, stopGrace*9/10)
	if stuck {
		d = s.dur(2*stopGrace, 4*stopGrace)
		s.trace(inst, "work ignores its context for %v", d)
	}
	time.Sleep(d)
	inst.noteReturn()
}

func (n *node) runElector(ctx context.Context, inst *instance) error {
	s := n.sim
	clk := newDriftClock(n.rate, n.offset)
	e, err := elector.New(elector.Config{
		Leases: inst.client, Namespace: namespace, Name: election, Identity: n.id,
		Clock: clk, Logger: discard, Version: "sim",
	})
	if err != nil {
		return err
	}
	var lock *migrate.Lock
	if n.kind == kindGuarded {
		lock = &migrate.Lock{
			Client: &objects{c: inst.client, store: s.old}, Kind: migrate.Endpoints,
			Namespace: namespace, Name: "old-lock", Identity: n.id, Clock: clk, Logger: discard,
		}
	}
	for {
		inner := func(ctx context.Context, term elector.Term) error {
			n.work(ctx, inst, election, int64(term.Token))
			return nil
		}
		fn := inner
		if lock != nil {
			fn = lock.Guard(inner)
		}
		err := e.Run(ctx, func(ctx context.Context, term elector.Term) error {
			stop := context.AfterFunc(ctx, inst.noteCancel)
			defer stop()
			return fn(ctx, term)
		})
		if ctx.Err() != nil || err != nil && !errors.Is(err, elector.ErrLeadershipLost) {
			return err
		}
	}
}

func (n *node) runClientGo(ctx context.Context, inst *instance) error {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: election, Namespace: namespace},
		Client:     inst.client,
		LockConfig: resourcelock.ResourceLockConfig{Identity: n.id},
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          lock,
		LeaseDuration: leaseDuration,
		RenewDeadline: renewDeadline,
		RetryPeriod:   retryPeriod,
		Name:          election,
		Callbacks: leaderelection.LeaderCallbacks{
			// client-go does not wait for this function: it must stop
			// the moment its context ends, and does.
			OnStartedLeading: func(ctx context.Context) {
				r := n.sim.hist.start(inst, election, -1)
				<-ctx.Done()
				n.sim.hist.end(r)
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		le.Run(ctx)
	}
	return nil
}

func (n *node) runShard(ctx context.Context, inst *instance) error {
	s := n.sim
	sh, err := shard.New(shard.Config{
		Leases: inst.client, Namespace: namespace, Group: shardGroup, Identity: n.id,
		Shards: s.cfg.shards, Clock: newDriftClock(n.rate, n.offset), Logger: discard,
	})
	if err != nil {
		return err
	}
	return sh.Run(ctx, func(ctx context.Context, k int, term elector.Term) error {
		n.work(ctx, inst, shardKey(k), int64(term.Token))
		return nil
	})
}

func shardKey(k int) string { return fmt.Sprintf("shard-%d", k) }
