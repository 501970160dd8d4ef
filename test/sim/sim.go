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
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/elector-dev/elector"
)

// Inject names a bug the simulator injects on purpose, to show that its
// checkers catch it (see CHAOS.md, Simulation).
type Inject string

const (
	// InjectNone runs the system as it is.
	InjectNone Inject = ""
	// InjectShortExpiry gives one library candidate a clock that runs at
	// three times true time: it judges a silent leader expired after a
	// third of the lease, as a shortened expiry in the code would.
	InjectShortExpiry Inject = "short-expiry"
	// InjectNoVersionCheck makes the server ignore the resourceVersion
	// condition of updates: two candidates can both win one record.
	InjectNoVersionCheck Inject = "no-version-check"
	// InjectEarlyTransfer makes the operator write the transfer of a
	// planned handoff itself (holder = target, token + 1, the holder
	// marker of a transfer) at once, instead of asking the holder: the
	// Lease moves before the old leader's function returned.
	InjectEarlyTransfer Inject = "early-transfer"
)

// Injects lists the injected bugs.
var Injects = []Inject{InjectShortExpiry, InjectNoVersionCheck, InjectEarlyTransfer}

// KeepGoing makes a run go on after a violation (except a loop without
// backoff, which would burn the run's CPU), so that one run reports every
// kind of violation it meets (once each), not just the first.
var KeepGoing bool

// OnlyShards makes every run the shard scenario.
var OnlyShards bool

// StaleCoordinator makes every shard run the scenario aimed at the
// review's shard double ownership: a coordinator whose watch lags while
// the other replicas, current, restart in turn (config.slowCoord).
var StaleCoordinator bool

// Timings of every candidate: elector's defaults, which client-go users
// run with too.
const (
	leaseDuration = elector.DefaultLeaseDuration
	renewDeadline = elector.DefaultRenewDeadline
	retryPeriod   = elector.DefaultRetryPeriod
	stopGrace     = elector.DefaultStopGrace
	// driftBound is 90% of doc.go's bound on clock rates,
	// (LeaseDuration − RenewDeadline) / (LeaseDuration + RenewDeadline).
	driftBound = 0.9 * float64(leaseDuration-renewDeadline) / float64(leaseDuration+renewDeadline)
)

// slowLag is how far behind, per event, the watch of a slow coordinator
// runs (config.slowCoord).
const slowLag = 8 * time.Second

// staleTail is how long the stale-coordinator scenario runs after its
// faults: long enough for the stops in flight to finish and for the
// overlaps they cause to show.
const staleTail = 20 * time.Second

// election is the name of the Lease of the election scenario.
const election = "sim"

// shardGroup is the group of the shard scenario.
const shardGroup = "grp"

// config is one run, drawn from its seed.
type config struct {
	seed   uint64
	inject Inject
	shards int // > 0: the shard scenario with this many shards

	electors  int // library candidates (election scenario)
	guarded   int // of which this many run their work under migrate.Lock.Guard
	clientgos int // client-go leaderelection candidates
	replicas  int // shard replicas

	deletions bool // the operator deletes the Lease by hand
	handoffs  bool // the operator requests planned handoffs
	garbage   bool // the operator writes an unparseable assignment table

	faultsEnd time.Duration // faults and node actions stop here
	end       time.Duration // the run ends here

	errRate   float64 // fraction of requests failed before the store
	lostReply float64 // fraction of successful writes whose reply is lost
	watchGone float64 // fraction of watch resumptions answered with 410
	watchHang float64 // fraction of streams that hang silently
	watchDrop float64 // fraction of streams that end early
	maxLag    time.Duration
	// lags, in shard runs, is each node's own maxLag (by node index):
	// replicas whose views lag each other by different amounts, such as
	// a coordinator that lags the table another replica wrote. maxLag is
	// then their maximum.
	lags      []time.Duration
	rollouts  bool          // shard runs: rolling restarts (each replica stopped and started again in turn)
	coordBias bool          // shard runs: half the faults aim at the coordinator
	quickBack bool          // shard runs: half the crashed or stopped replicas come back within 2 s
	slowCoord bool          // shard runs: the coordinator's watch lags (up to slowLag per event) while it coordinates
	shortTail bool          // the stale-coordinator scenario: the run ends staleTail after the faults, unchecked for liveness
	latency   time.Duration // maximum one-way latency while faulty
	stuck     float64       // fraction of tenures whose function ignores its context
}

func (c config) String() string {
	kind := fmt.Sprintf("election: %d library (%d guarded), %d client-go", c.electors, c.guarded, c.clientgos)
	if c.shards > 0 {
		kind = fmt.Sprintf("shards: %d replicas, K=%d, lags %v, rollouts=%v coordinator faults=%v quick restarts=%v slow coordinator=%v",
			c.replicas, c.shards, c.lags, c.rollouts, c.coordBias, c.quickBack, c.slowCoord)
	}
	return fmt.Sprintf("seed %d inject %q: %s; deletions=%v handoffs=%v garbage=%v; faults until %v, end %v; errors %.2f lost replies %.2f lag %v hang %.2f",
		c.seed, c.inject, kind, c.deletions, c.handoffs, c.garbage, c.faultsEnd, c.end, c.errRate, c.lostReply, c.maxLag, c.watchHang)
}

// draw picks a run's configuration from its seed.
func draw(seed uint64, inject Inject) config {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	c := config{seed: seed, inject: inject}
	c.faultsEnd = time.Duration(30+r.IntN(90)) * time.Second
	c.end = c.faultsEnd + 150*time.Second
	c.errRate = []float64{0, 0.02, 0.1, 0.3}[r.IntN(4)]
	c.lostReply = []float64{0, 0.05, 0.2}[r.IntN(3)]
	c.watchGone = []float64{0, 0.2, 0.5}[r.IntN(3)]
	c.watchHang = []float64{0, 0.05, 0.2}[r.IntN(3)]
	c.watchDrop = []float64{0, 0.1, 0.4}[r.IntN(3)]
	c.maxLag = []time.Duration{0, 200 * time.Millisecond, 2 * time.Second, 8 * time.Second}[r.IntN(4)]
	c.latency = []time.Duration{time.Millisecond, 50 * time.Millisecond, 500 * time.Millisecond}[r.IntN(3)]
	c.stuck = []float64{0, 0, 0.1}[r.IntN(3)]
	switch {
	case inject != InjectNone:
		// The injected bugs are bugs of elections.
	case r.IntN(3) == 0 || OnlyShards:
		c.shards = 1 + r.IntN(6)
		c.replicas = 2 + r.IntN(3)
		c.garbage = r.IntN(4) == 0
		// The fault mix of shard runs (drawn after the draws above, so
		// that election runs keep their scenarios): each
		// replica's watch lags by its own amount, rolling restarts,
		// faults aimed at the coordinator, quick restarts. Together they
		// make the window of the review's shard double ownership (see
		// CHAOS.md, Simulation): a replica re-registers in a new epoch,
		// a replica whose view shows it writes a table naming that epoch
		// (a shutdown's hand-on, or a coordinator), and a coordinator
		// whose watch still shows the older epoch reads that table after
		// a conflict.
		c.maxLag = 0
		for range c.replicas {
			lag := []time.Duration{0, 0, 200 * time.Millisecond, 2 * time.Second, 8 * time.Second}[r.IntN(5)]
			c.lags = append(c.lags, lag)
			c.maxLag = max(c.maxLag, lag)
		}
		c.rollouts = r.IntN(4) != 0
		c.coordBias = r.IntN(2) == 0
		c.quickBack = r.IntN(2) == 0
		if c.slowCoord = r.IntN(2) == 0 || StaleCoordinator; c.slowCoord {
			// The targeted scenario: a slow coordinator, every other
			// view current, rolling restarts of 4 replicas. (With 3,
			// the shards a stale coordinator moves can only go to
			// itself, and its lagging view starts them late: half the
			// finds; 5 find more per seed but fewer per CPU second.)
			c.maxLag, c.rollouts = slowLag, true
			c.replicas = 4
			c.lags = make([]time.Duration, c.replicas)
			if StaleCoordinator {
				// Aimed at safety during the faults (the lag stops with
				// them): a short tail, without the check that every shard
				// is owned at the end, which the shard mix keeps.
				c.end, c.shortTail = c.faultsEnd+staleTail, true
			}
		}
		return c
	}
	c.electors = 2 + r.IntN(3)
	if r.IntN(3) == 0 {
		c.guarded = 1 + r.IntN(c.electors)
	}
	c.handoffs = r.IntN(2) == 0 || inject == InjectEarlyTransfer
	c.deletions = r.IntN(3) == 0 && inject == InjectNone
	if !c.deletions && r.IntN(2) == 0 {
		// client-go re-creates a deleted Lease at once: doc.go promises
		// nothing for it, so it never shares a run with hand deletions.
		c.clientgos = 1 + r.IntN(2)
	}
	return c
}

// Sim is one run of the whole system in a synctest bubble.
type Sim struct {
	cfg   config
	start time.Time

	mu         sync.Mutex
	rng        *rand.Rand
	srv        *server
	trail      []traceEntry
	violations []string
	abort      context.CancelFunc
	hist       *history
	nodes      []*node
	lastWriter map[string]*instance
	old        *oldStore
}

type traceEntry struct {
	at  time.Duration
	who string
	msg string
}

const traceLen = 200

func newSim(cfg config) *Sim {
	s := &Sim{
		cfg:        cfg,
		start:      time.Now(),
		rng:        rand.New(rand.NewPCG(cfg.seed, 0xfa17)),
		lastWriter: map[string]*instance{},
	}
	s.srv = newServer(s)
	s.hist = newHistory(s)
	return s
}

// now is the virtual time since the run began.
func (s *Sim) now() time.Duration { return time.Since(s.start) }

// faulty reports whether faults are on.
func (s *Sim) faulty() bool { return s.now() < s.cfg.faultsEnd }

func (s *Sim) float() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64()
}

func (s *Sim) chance(p float64) bool { return p > 0 && s.float() < p }

func (s *Sim) intn(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.IntN(n)
}

func (s *Sim) perm(n int) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Perm(n)
}

// dur is a random duration in [lo, hi).
func (s *Sim) dur(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)))
}

// latency waits one way of a request: a millisecond, up to cfg.latency
// while faulty.
func (s *Sim) latency(ctx context.Context) error {
	// A millisecond whatever ctx says, so that a loop of requests (one
	// whose context has ended, say) cannot stop virtual time.
	time.Sleep(time.Millisecond)
	if !s.faulty() {
		return ctx.Err()
	}
	t := time.NewTimer(s.dur(0, s.cfg.latency))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Sim) trace(inst *instance, format string, args ...any) {
	who := "sim"
	if inst != nil {
		who = inst.name()
	}
	e := traceEntry{at: s.now(), who: who, msg: fmt.Sprintf(format, args...)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.trail) >= 2*traceLen {
		s.trail = append(s.trail[:0], s.trail[len(s.trail)-traceLen:]...)
	}
	s.trail = append(s.trail, e)
}

// violate records a violation and ends the run.
func (s *Sim) violate(format string, args ...any) {
	msg := fmt.Sprintf("%v: ", s.now().Round(time.Microsecond)) + fmt.Sprintf(format, args...)
	s.trace(nil, "VIOLATION %s", msg)
	s.mu.Lock()
	abort := s.abort
	if KeepGoing {
		if !strings.Contains(msg, "without backoff") {
			abort = nil // a loop without backoff would burn the run's CPU
		}
		for _, v := range s.violations {
			if Classify(v) == Classify(msg) {
				s.mu.Unlock()
				return // one of each kind is enough
			}
		}
	}
	s.violations = append(s.violations, msg)
	s.mu.Unlock()
	if abort != nil {
		abort()
	}
}

// traceTail formats the last n trace entries.
func (s *Sim) traceTail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tr := s.trail
	if len(tr) > n {
		tr = tr[len(tr)-n:]
	}
	var b strings.Builder
	for _, e := range tr {
		fmt.Fprintf(&b, "  %12v %-8s %s\n", e.at.Round(time.Microsecond), e.who, e.msg)
	}
	return b.String()
}

// wrote is called by the server after each successful write.
func (s *Sim) wrote(inst *instance, verb string, l *coordinationv1.Lease) {
	spec := l.Spec
	holder, tr := "", int32(0)
	if spec.HolderIdentity != nil {
		holder = *spec.HolderIdentity
	}
	if spec.LeaseTransitions != nil {
		tr = *spec.LeaseTransitions
	}
	_, req := l.Annotations[elector.AnnotationHandoffTo]
	s.trace(inst, "%s %s rv=%s holder=%q transitions=%d request=%v", verb, l.Name, l.ResourceVersion, holder, tr, req)
	s.mu.Lock()
	prev := s.lastWriter[l.Name]
	s.lastWriter[l.Name] = inst
	s.mu.Unlock()
	if inst.node.kind == kindOperator && req && prev != nil && prev.node.kind == kindClientGo && prev.node.id == holder {
		s.violate("RequestHandoff accepted a request on %s under client-go holder %q, which does not serve handoffs (the holder marker looked current)", l.Name, holder)
	}
}

// deleted is called by the server after a Lease was deleted.
func (s *Sim) deleted(inst *instance, name string, uid types.UID) {
	s.trace(inst, "delete %s %s", name, uid)
	s.hist.deleted(name, uid)
}

// Classify names the kind of a violation, for summaries.
func Classify(v string) string {
	switch {
	case strings.Contains(v, "two tenures of "+election+" "):
		return "overlap/election"
	case strings.Contains(v, "two tenures of shard"):
		return "overlap/shard"
	case strings.Contains(v, "token of "+election+" "):
		return "token/election"
	case strings.Contains(v, "token of shard"):
		return "token/shard"
	case strings.Contains(v, "without backoff"):
		for _, n := range []string{"-shards", "-coordinator", "-m-", "old-"} {
			if strings.Contains(v, n) {
				return "hot-loop/" + strings.Trim(n, "-")
			}
		}
		return "hot-loop/" + election
	case strings.Contains(v, "a follower, sent requests"):
		return "follower-requests"
	case strings.Contains(v, "ErrStopOverrun"):
		return "false-overrun"
	case strings.Contains(v, "owners"):
		return "liveness/shard"
	case strings.Contains(v, "no leader"):
		return "liveness/election"
	case strings.Contains(v, "RequestHandoff accepted"):
		return "handoff-under-client-go"
	}
	return "other"
}
