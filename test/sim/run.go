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
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/migrate"
	"github.com/elector-dev/elector/shard"
)

// Timings of the liveness bound, as doc.go and config.go define them for
// the default timings every candidate runs with.
const (
	// idleTimeout is the watch idle timeout, max(2 RetryPeriod,
	// LeaseDuration/3) (doc.go, API cost).
	idleTimeout = max(2*retryPeriod, leaseDuration/3)
	// apiTimeout is the default APITimeout, RenewDeadline/4: it bounds
	// every request, the watch request that replaces a dead watch too.
	apiTimeout = renewDeadline / 4
	// restartDelay is the longest a node takes to start again after its
	// process exited (or, when it was down, after the heal), as a
	// kubelet's restart would.
	restartDelay = 2 * time.Second
)

// slowest is the true time that d of a candidate's clock takes on the
// slowest clock a run may draw (rate 1 − driftBound).
func slowest(d time.Duration) time.Duration {
	return time.Duration(math.Ceil(float64(d) / (1 - driftBound)))
}

// livenessBound is how soon after faults stop a leader must lead: exactly
// what doc.go and migrate/doc.go promise, nothing looser.
//
//   - The last change before the faults stopped may reach a candidate
//     maxLag later (a lagging watch), or restartDelay later (a process
//     that was down reads it when it starts); candidates measure expiry
//     from when they saw the last change.
//   - doc.go: a candidate takes over from a holder that crashed within
//     LeaseDuration plus the watch idle timeout (a watch that hung is
//     restarted after it), plus the APITimeout of the watch request that
//     replaces a dead one (a request without an answer is given up after
//     it); all on the candidate's own clock, so at the slowest rate.
//   - migrate/doc.go: Guard waits out an old lock that a crashed holder
//     left behind for a lease on its own clock from when it first reads
//     it, which is only after it won the Lease: one more lease when the
//     run has guarded candidates.
//
// Before the fixes of the watch request timeout and of migrate's renewal
// deadline this was 2 LeaseDuration + 4 RetryPeriod (38 s) for every run:
// looser than doc.go for elections (35.4 s with the worst lag, 29.4 s
// without lag), tighter for guarded ones (53.7 s).
func (s *Sim) livenessBound() time.Duration {
	b := max(s.cfg.maxLag, restartDelay) + slowest(leaseDuration+idleTimeout+apiTimeout)
	if s.cfg.guarded > 0 {
		b += slowest(leaseDuration)
	}
	return b
}

// Result is the outcome of one run.
type Result struct {
	Config     string
	Violations []string
	Trace      string // the last events before the first violation
}

// Run simulates one seed. It must be called inside a synctest bubble.
func Run(seed uint64, inject Inject) Result {
	cfg := draw(seed, inject)
	s := newSim(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	s.abort = cancel
	s.old = &oldStore{}

	rate := func() float64 { return 1 + (2*s.float()-1)*driftBound }
	offset := func() time.Duration { return s.dur(-time.Hour, time.Hour) }
	add := func(id string, k kind) *node {
		n := &node{sim: s, id: id, kind: k, rate: rate(), offset: offset(), lag: cfg.maxLag}
		s.nodes = append(s.nodes, n)
		return n
	}
	if cfg.shards > 0 {
		for i := range cfg.replicas {
			add(fmt.Sprintf("r%d", i), kindShard).lag = cfg.lags[i]
		}
	} else {
		for i := range cfg.electors {
			k := kindElector
			if i < cfg.guarded {
				k = kindGuarded
			}
			add(fmt.Sprintf("e%d", i), k)
		}
		for i := range cfg.clientgos {
			add(fmt.Sprintf("c%d", i), kindClientGo)
		}
		if inject == InjectShortExpiry {
			s.nodes[len(s.nodes)-1-cfg.clientgos].rate = 3
		}
	}
	s.trace(nil, "%v", cfg)

	var wg sync.WaitGroup
	for _, n := range s.nodes {
		wg.Go(func() { n.loop(ctx) })
	}
	wg.Go(func() { s.chaos(ctx, &wg) })
	if cfg.rollouts {
		wg.Go(func() { s.rollout(ctx) })
	}
	op := &node{sim: s, id: "operator", kind: kindOperator, lag: cfg.maxLag}
	wg.Go(func() { s.operate(ctx, op) })
	if cfg.shards == 0 {
		wg.Go(func() { s.liveness(ctx) })
	}
	if sleep(ctx, cfg.end) && cfg.shards > 0 && !cfg.garbage && !cfg.shortTail {
		for k := range cfg.shards {
			if l := s.hist.leading(shardKey(k)); len(l) != 1 {
				s.violate("shard %d has %d owners %v after faults stopped", k, len(l), cfg.end-cfg.faultsEnd)
			}
		}
	}
	cancel()
	wg.Wait()
	// Let what the product still runs (a release in flight, a watch
	// ending) finish inside the bubble.
	time.Sleep(time.Minute)

	res := Result{Config: cfg.String()}
	s.mu.Lock()
	res.Violations = append(res.Violations, s.violations...)
	s.mu.Unlock()
	if len(res.Violations) > 0 {
		res.Trace = s.traceTail(traceLen)
	}
	return res
}

// liveness checks that, from livenessBound after the faults stopped, a
// candidate leads at every second.
func (s *Sim) liveness(ctx context.Context) {
	if !sleep(ctx, s.cfg.faultsEnd+s.livenessBound()) {
		return
	}
	for s.now() < s.cfg.end {
		if len(s.hist.leading(election)) == 0 {
			s.violate("no leader %v after faults stopped", s.now()-s.cfg.faultsEnd)
			return
		}
		if !sleep(ctx, time.Second) {
			return
		}
	}
}

// chaos crashes, stops and partitions nodes while faults are on, then
// heals everything.
func (s *Sim) chaos(ctx context.Context, wg *sync.WaitGroup) {
	for s.faulty() {
		// Never past faultsEnd: partitions and down nodes last until the
		// heal below, and the checkers count from faultsEnd. (Sleeping
		// the full draw healed up to 12 s late, which the liveness bound
		// charged to the product.)
		if !sleep(ctx, min(s.dur(time.Second, 12*time.Second), s.cfg.faultsEnd-s.now())) {
			return
		}
		if !s.faulty() {
			break
		}
		n := s.nodes[s.intn(len(s.nodes))]
		if s.cfg.coordBias && s.intn(2) == 0 {
			if c := s.coordinator(); c != nil {
				n = c
			}
		}
		inst := n.current()
		if inst == nil {
			continue
		}
		switch s.intn(4) {
		case 0, 1:
			graceful := s.intn(2) == 0
			downFor := s.dur(0, 20*time.Second)
			if s.cfg.quickBack && s.intn(2) == 0 {
				downFor = s.dur(0, 2*time.Second)
			}
			n.setDown(true)
			if graceful {
				s.trace(inst, "stop (scale down) for %v", downFor)
				inst.cancel()
			} else {
				inst.kill(fmt.Sprintf("crash, down for %v", downFor))
			}
			wg.Go(func() {
				sleep(ctx, downFor)
				n.setDown(false)
			})
		case 2:
			d := s.dur(time.Second, 25*time.Second)
			s.trace(inst, "partitioned for %v", d)
			inst.mu.Lock()
			inst.partUntil = s.now() + d
			inst.mu.Unlock()
		}
	}
	s.trace(nil, "faults stop")
	for _, n := range s.nodes {
		n.setDown(false)
		if inst := n.current(); inst != nil {
			inst.mu.Lock()
			inst.partUntil = 0
			inst.mu.Unlock()
		}
	}
}

// coordinator returns the node that holds the shard group's coordinator
// Lease now (nil if none), read from the store without faults.
func (s *Sim) coordinator() *node {
	l, err := s.srv.base.Get(context.Background(), shard.CoordinatorName(shardGroup), metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return nil
	}
	for _, n := range s.nodes {
		if n.id == *l.Spec.HolderIdentity {
			return n
		}
	}
	return nil
}

// rollout restarts the replicas in turn while faults are on, as a rolling
// update of a StatefulSet does: each is stopped (it hands its shards on
// and releases its member Lease), starts again with the same identity a
// moment later (a new epoch), and the next one follows up to 1 s after it
// runs again. So one replica re-registers while the next one hands its
// shards on, to members as its view shows them.
func (s *Sim) rollout(ctx context.Context) {
	// wait polls cond every 10 ms of virtual time for up to a minute.
	wait := func(cond func() bool) bool {
		for end := s.now() + time.Minute; !cond() && s.now() < end; {
			if !sleep(ctx, 10*time.Millisecond) {
				return false
			}
		}
		return true
	}
	for s.faulty() {
		if !sleep(ctx, s.dur(time.Second, 10*time.Second)) {
			return
		}
		s.trace(nil, "rolling restart")
		for _, i := range s.perm(len(s.nodes)) {
			if !s.faulty() {
				break
			}
			n := s.nodes[i]
			inst := n.current()
			if inst == nil || inst.dead() {
				continue
			}
			n.setDown(true)
			s.trace(inst, "stop (rolling restart)")
			inst.cancel()
			ok := wait(inst.dead) && sleep(ctx, s.dur(0, time.Second))
			n.setDown(false)
			if !ok || !wait(func() bool { return n.current() != inst }) || !sleep(ctx, s.dur(0, time.Second)) {
				return
			}
		}
	}
}

// operate acts as an operator while faults are on: planned handoffs,
// hand deletion of the Lease, a hand-edited assignment table.
func (s *Sim) operate(ctx context.Context, op *node) {
	inst, ictx := op.newInstance(ctx)
	defer inst.cancel()
	var acts []string
	if s.cfg.handoffs {
		acts = append(acts, "handoff", "handoff", "handoff")
	}
	if s.cfg.deletions {
		acts = append(acts, "delete")
	}
	if s.cfg.garbage {
		acts = append(acts, "garbage")
	}
	if s.cfg.inject == InjectEarlyTransfer {
		acts = append(acts, "early-transfer", "early-transfer")
	}
	if len(acts) == 0 {
		return
	}
	var ids []string
	for _, n := range s.nodes {
		ids = append(ids, n.id)
	}
	for s.faulty() {
		if !sleep(ctx, s.dur(3*time.Second, 25*time.Second)) || !s.faulty() {
			return
		}
		rctx, cancel := context.WithTimeout(ictx, 5*time.Second)
		switch act := acts[s.intn(len(acts))]; act {
		case "handoff":
			to := ""
			if i := s.intn(len(ids) + 1); i < len(ids) {
				to = ids[i]
			}
			_, err := elector.RequestHandoff(rctx, inst.client, election, to)
			s.trace(inst, "request handoff to %q: %v", to, err)
		case "delete":
			err := inst.client.Delete(rctx, election, metav1.DeleteOptions{})
			s.trace(inst, "delete the Lease by hand: %v", err)
		case "garbage":
			s.garbage(rctx, inst)
		case "early-transfer":
			s.earlyTransfer(rctx, inst)
		}
		cancel()
	}
}

// garbage writes an assignment table the replicas cannot read, as a hand
// edit would. Shard safety is not checked after it (assumption broken);
// hot loops still are.
func (s *Sim) garbage(ctx context.Context, inst *instance) {
	l, err := inst.client.Get(ctx, shard.AssignmentName(shardGroup), metav1.GetOptions{})
	if err != nil {
		return
	}
	s.hist.excuse()
	bad := []string{`{"format":2,"generation":1,"shards":[]}`, `{not json`}[s.intn(2)]
	l.Annotations[shard.AnnotationShards] = bad
	_, err = inst.client.Update(ctx, l, metav1.UpdateOptions{})
	s.trace(inst, "hand-edit the assignment table to %s: %v", bad, err)
}

// earlyTransfer is the injected bug InjectEarlyTransfer: the Lease is
// written to a target exactly as a planned handoff's transfer writes it,
// while the holder's function still runs.
func (s *Sim) earlyTransfer(ctx context.Context, inst *instance) {
	l, err := inst.client.Get(ctx, election, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
		return
	}
	holder := *l.Spec.HolderIdentity
	var targets []string
	for _, n := range s.nodes {
		if n.id != holder && (n.kind == kindElector || n.kind == kindGuarded) {
			targets = append(targets, n.id)
		}
	}
	if len(targets) == 0 {
		return
	}
	to := targets[s.intn(len(targets))]
	tr := int32(0)
	if l.Spec.LeaseTransitions != nil {
		tr = *l.Spec.LeaseTransitions
	}
	tr++
	now := metav1.NewMicroTime(time.Now())
	l.Spec.HolderIdentity, l.Spec.LeaseTransitions = &to, &tr
	l.Spec.AcquireTime, l.Spec.RenewTime = &now, &now
	m, _ := json.Marshal(elector.HolderMarker{Identity: to, Token: int64(tr), Version: "sim", Handoff: true, HandedBy: holder})
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[elector.AnnotationHolder] = string(m)
	_, err = inst.client.Update(ctx, l, metav1.UpdateOptions{})
	s.trace(inst, "INJECTED early transfer %s -> %s (token %d): %v", holder, to, tr, err)
}

// oldStore is the object that carries an old annotation lock (an
// Endpoints), for the migration guards.
type oldStore struct {
	mu   sync.Mutex
	meta *metav1.ObjectMeta
	rv   int
}

var endpointsGR = schema.GroupResource{Resource: "endpoints"}

// objects is one instance's migrate.Objects: the old lock through the
// same fault layer as its Leases.
type objects struct {
	c     *client
	store *oldStore
}

var _ migrate.Objects = (*objects)(nil)

func (o *objects) Get(ctx context.Context, _ migrate.Kind, _, name string) (*metav1.ObjectMeta, error) {
	if err := o.c.before(ctx, "old-get", name); err != nil {
		return nil, err
	}
	o.store.mu.Lock()
	var m *metav1.ObjectMeta
	if o.store.meta != nil {
		m = o.store.meta.DeepCopy()
	}
	o.store.mu.Unlock()
	if err := o.c.after(ctx, false); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, apierrors.NewNotFound(endpointsGR, name)
	}
	return m, nil
}

func (o *objects) Create(ctx context.Context, _ migrate.Kind, meta *metav1.ObjectMeta) (*metav1.ObjectMeta, error) {
	if err := o.c.before(ctx, "old-create", meta.Name); err != nil {
		return nil, err
	}
	o.store.mu.Lock()
	var m *metav1.ObjectMeta
	var err error = apierrors.NewAlreadyExists(endpointsGR, meta.Name)
	if o.store.meta == nil {
		o.store.rv++
		o.store.meta = meta.DeepCopy()
		o.store.meta.ResourceVersion = strconv.Itoa(o.store.rv)
		m, err = o.store.meta.DeepCopy(), nil
	}
	o.store.mu.Unlock()
	if aerr := o.c.after(ctx, err == nil); aerr != nil {
		return nil, aerr
	}
	return m, err
}

func (o *objects) SetAnnotation(ctx context.Context, _ migrate.Kind, meta *metav1.ObjectMeta, k, v string) (*metav1.ObjectMeta, error) {
	if err := o.c.before(ctx, "old-update", meta.Name); err != nil {
		return nil, err
	}
	o.store.mu.Lock()
	var m *metav1.ObjectMeta
	var err error
	switch {
	case o.store.meta == nil:
		err = apierrors.NewNotFound(endpointsGR, meta.Name)
	case o.store.meta.ResourceVersion != meta.ResourceVersion:
		err = apierrors.NewConflict(endpointsGR, meta.Name, errors.New("the object has been modified"))
	default:
		o.store.rv++
		if o.store.meta.Annotations == nil {
			o.store.meta.Annotations = map[string]string{}
		}
		o.store.meta.Annotations[k] = v
		o.store.meta.ResourceVersion = strconv.Itoa(o.store.rv)
		m = o.store.meta.DeepCopy()
	}
	o.store.mu.Unlock()
	if aerr := o.c.after(ctx, err == nil); aerr != nil {
		return nil, aerr
	}
	return m, err
}
