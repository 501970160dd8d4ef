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

package shard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/outage"
)

// Func is the work on one shard. It runs once per shard this replica
// owns, with that shard's number and term (Term.Token is the shard's
// fencing token). Its ctx is cancelled when the shard moves or this
// replica's tenure ends; it must then return within StopGrace. If it
// returns while the shard is still owned here, it is started again, with
// the same term, after RetryPeriod.
type Func func(ctx context.Context, shard int, term elector.Term) error

// Errors of Run.
var (
	// ErrAlreadyRunning means Run was called while another Run of the
	// same Shards had not returned.
	ErrAlreadyRunning = errors.New("shard: Run is already running")
	// ErrShardCountMismatch means the group's assignment Lease has
	// another number of shards than Config.Shards.
	ErrShardCountMismatch = errors.New("shard: the group has another number of shards")
)

// Shards is one replica of a sharded group. Create it with New; it is
// safe for concurrent use.
type Shards struct {
	cfg     Config
	log     *slog.Logger
	clk     clock.WithTicker
	watch   *elector.SharedWatch
	member  *elector.Elector
	coord   *elector.Elector
	view    *view
	metrics *metrics
	running atomic.Bool

	mu      sync.Mutex
	working map[int]elector.Token // shards whose function runs here

	// The coordinator's record of the live members (only its loop uses
	// them): their last set, and when it changed.
	lastMembers    string
	membersChanged time.Time
	// badTable paces the coordinator's reads of an assignment Lease it
	// cannot parse.
	badTable backoff
}

// handOnWait bounds how long the shards that stopped for a handoff wait
// for the others of the same request, so that they go in one write: a
// moment against the round trips that each write would cost.
const handOnWait = 50 * time.Millisecond

// membershipSettle is how long the live members must stay the same before
// the coordinator moves shards between them: long enough for the replicas
// of one scale-up to register together, short against the one second a
// scale-up should take. Unowned and orphaned shards are assigned at once.
const membershipSettle = 250 * time.Millisecond

// settle is membershipSettle, at most a quarter of the retry period (for
// short timings).
func (s *Shards) settle() time.Duration { return min(membershipSettle, s.cfg.RetryPeriod/4) }

// retrying logs a failed request that is retried: at debug level when it
// is part of an outage of the API server (logged once when it starts and
// once when it ends, see package outage), else at info level.
func (s *Shards) retrying(msg string, err error, attrs ...any) {
	s.log.Log(context.Background(), outage.Level(err), msg, append([]any{"error", err}, attrs...)...) //nolint:sloglint // callers pass a fixed message
}

// New validates cfg and returns a replica of the group.
func New(cfg Config) (*Shards, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withTimings()
	// One line when the API server stops answering and one when it
	// answers again, for every request of this replica: its own, its
	// electors' and the watch's (package outage).
	cfg.Leases = outage.Wrap(cfg.Leases, outage.New(cfg.Logger.With("group", cfg.Namespace+"/"+cfg.Group, "identity", cfg.Identity), cfg.Clock))
	w := elector.NewSharedWatch(cfg.Leases, cfg.Namespace, elector.SharedWatchOptions{
		Clock: cfg.Clock, Logger: cfg.Logger, APITimeout: cfg.APITimeout, Backoff: cfg.RetryPeriod,
		LabelSelector: LabelGroup + "=" + cfg.Group,
	})
	member, err := elector.New(cfg.electorConfig(MemberName(cfg.Group, cfg.Identity), RoleMember, w))
	if err != nil {
		return nil, err
	}
	coord, err := elector.New(cfg.electorConfig(CoordinatorName(cfg.Group), RoleCoordinator, w))
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer, cfg.Namespace, cfg.Group, cfg.Shards)
	if err != nil {
		return nil, err
	}
	return &Shards{
		cfg:     cfg,
		log:     cfg.Logger.With("group", cfg.Namespace+"/"+cfg.Group, "identity", cfg.Identity),
		clk:     cfg.Clock,
		watch:   w,
		member:  member,
		coord:   coord,
		view:    newView(cfg.Group, cfg.LeaseDuration),
		metrics: m,
		working: map[int]elector.Token{},
	}, nil
}

// Run takes part in the group until ctx ends: it keeps this replica's
// member Lease, runs fn once per shard this replica owns, completes the
// handoffs asked of it, and campaigns for the coordinator, which balances
// the shards. At shutdown (ctx ends) it stops every shard's function,
// hands its shards to the other live replicas in one write, and releases
// its Leases. It returns nil after a shutdown, or an error retries cannot
// fix: elector.ErrStopOverrun (a function did not return in time: exit
// the process), an *elector.ForbiddenError, ErrShardCountMismatch.
func (s *Shards) Run(ctx context.Context, fn Func) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer s.running.Store(false)
	// Hold the shared watch for the whole Run, so that it does not stop
	// and relist between member tenures.
	_, stopWatch := s.watch.Notify()
	defer stopWatch()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	coordDone := make(chan error, 1)
	go func() {
		err := s.campaign(ctx)
		if err != nil {
			cancel(err)
		}
		coordDone <- err
	}()
	err := s.serveLoop(ctx, fn)
	cancel(err)
	if cerr := <-coordDone; err == nil {
		err = cerr
	}
	return err
}

// serveLoop keeps a member tenure: a tenure lost (renewals failed, or the
// coordinator fenced the member Lease) has stopped all its shards; a new
// one owns nothing until the coordinator assigns shards to it.
func (s *Shards) serveLoop(ctx context.Context, fn Func) error {
	for {
		err := s.member.Run(ctx, func(mctx context.Context, term elector.Term) error {
			return s.serve(ctx, mctx, term, fn)
		})
		switch {
		case ctx.Err() != nil:
			return err // nil, or an overrun at shutdown; Run adds the coordinator's error
		case errors.Is(err, elector.ErrLeadershipLost):
			s.log.Info("Member tenure ended; registering again", "reason", err)
		default:
			return err
		}
	}
}

// campaign runs for coordinator until ctx ends.
func (s *Shards) campaign(ctx context.Context) error {
	for {
		err := s.coord.Run(ctx, s.coordinate)
		switch {
		case ctx.Err() != nil:
			return nil //nolint:nilerr // shutdown: Run returns nil whatever the coordinator's last error
		case err == nil || errors.Is(err, elector.ErrLeadershipLost):
			continue
		default:
			return fmt.Errorf("shard: coordinator: %w", err)
		}
	}
}

// worker is one shard's running function.
type worker struct {
	token    int64
	cancel   context.CancelCauseFunc
	stopping bool
}

type workerDone struct {
	shard int
	w     *worker
	err   error
}

// Errors passed as the cause of a shard function's context.
var (
	errMoved    = errors.New("shard: the shard moved")
	errStopping = errors.New("shard: the replica's tenure ended")
)

// serve runs the shards of one member tenure (term.Token is its epoch).
// mctx ends at the tenure's stop point or at shutdown; serve returns only
// after every shard function has returned, and at shutdown hands the
// shards on first.
func (s *Shards) serve(runCtx, mctx context.Context, term elector.Term, fn Func) error {
	epoch := int64(term.Token)
	changed, stop := s.watch.Notify()
	defer stop()
	s.log.Info("Member tenure began", "epoch", epoch)

	workers := map[int]*worker{}
	done := make(chan workerDone)
	retryAt := map[int]time.Time{}
	stoppedAt := map[int]time.Time{} // when a stopping shard's function returned
	var retryT clock.Timer
	defer func() {
		if retryT != nil {
			retryT.Stop()
		}
	}()

	unreadable := false // the newest assignment seen cannot be parsed (logged)
	reconcile := func() error {
		now := s.clk.Now()
		snap, synced := s.watch.Snapshot()
		s.view.refresh(snap, synced, now)
		// An assignment Lease that cannot be parsed counts as no table:
		// the shards it may have moved stop here (once per change).
		terr := s.view.tableError()
		if terr != nil && !unreadable {
			s.log.Error("Unable to read the assignment; running no shard until it is fixed", "lease", AssignmentName(s.cfg.Group), "error", terr)
		}
		unreadable = terr != nil
		_, t, ok, deleted := s.view.current()
		want := map[int]int64{}
		var give []int
		stopping := 0 // shards asked for a handoff whose function still runs
		if ok && !deleted {
			if len(t.Shards) != s.cfg.Shards {
				return s.mismatch(len(t.Shards))
			}
			for i, sl := range t.Shards {
				if sl.Owner != s.cfg.Identity || sl.Epoch != epoch {
					continue
				}
				switch {
				case sl.HandoffTo == "":
					want[i] = sl.Token
				case workers[i] == nil:
					give = append(give, i)
				default:
					stopping++
				}
			}
		}
		for i, w := range workers {
			if tok, ok := want[i]; (!ok || tok != w.token) && !w.stopping {
				w.stopping = true
				w.cancel(errMoved)
			}
		}
		var next time.Time
		for i, tok := range want {
			if workers[i] != nil || mctx.Err() != nil {
				continue
			}
			if at, ok := retryAt[i]; ok && now.Before(at) {
				if next.IsZero() || at.Before(next) {
					next = at
				}
				continue
			}
			delete(retryAt, i)
			w := &worker{token: tok}
			wctx, cancel := context.WithCancelCause(mctx)
			w.cancel = cancel
			workers[i] = w
			go func(i int) {
				err := fn(wctx, i, elector.Term{Token: elector.Token(tok), Identity: s.cfg.Identity, Acquired: now})
				cancel(nil)
				done <- workerDone{shard: i, w: w, err: err}
			}(i)
			s.log.Info("Started shard", "shard", i, "token", tok)
		}
		s.setWorking(workers)
		// The handoffs go in one write once every shard asked for has
		// stopped, or handOnWait after the first one stopped (a slow
		// function does not hold up the others). A shard asked for whose
		// function was not running (it returned and waits for its
		// restart) goes at once, with those stopped so far: it has
		// nothing to wait for.
		handOn := len(give) > 0 && mctx.Err() == nil
		if handOn && stopping > 0 {
			first := now
			for _, i := range give {
				at, ok := stoppedAt[i]
				if !ok {
					first = time.Time{} // not stopped by this request: not running
					break
				}
				if at.Before(first) {
					first = at
				}
			}
			if at := first.Add(handOnWait); !first.IsZero() && now.Before(at) {
				handOn = false
				if next.IsZero() || at.Before(next) {
					next = at
				}
			}
		}
		if retryT != nil {
			retryT.Stop()
			retryT = nil
		}
		if !next.IsZero() {
			retryT = s.clk.NewTimer(max(next.Sub(now), 0))
		}
		if handOn {
			s.handOn(mctx, epoch, give, workers)
			for _, i := range give {
				delete(stoppedAt, i)
			}
		}
		return nil
	}

	onDone := func(d workerDone) {
		if workers[d.shard] == d.w {
			delete(workers, d.shard)
		}
		s.setWorking(workers)
		switch {
		case d.w.stopping || mctx.Err() != nil:
			stoppedAt[d.shard] = s.clk.Now()
			s.log.Info("Stopped shard", "shard", d.shard, "token", d.w.token)
		case d.err != nil:
			s.log.Error("Shard function failed; restarting it", "shard", d.shard, "token", d.w.token, "error", d.err, "after", s.cfg.RetryPeriod.String())
			retryAt[d.shard] = s.clk.Now().Add(s.cfg.RetryPeriod)
		default:
			s.log.Info("Shard function returned; restarting it", "shard", d.shard, "token", d.w.token, "after", s.cfg.RetryPeriod.String())
			retryAt[d.shard] = s.clk.Now().Add(s.cfg.RetryPeriod)
		}
	}

	var err error
	for err == nil && mctx.Err() == nil {
		if err = reconcile(); err != nil {
			break
		}
		var retryC <-chan time.Time
		if retryT != nil {
			retryC = retryT.C()
		}
		select {
		case <-mctx.Done():
		case <-changed:
		case d := <-done:
			onDone(d)
			// Take every other function that has returned meanwhile, so
			// that they are handed on together.
			for more := true; more; {
				select {
				case d := <-done:
					onDone(d)
				default:
					more = false
				}
			}
		case <-retryC:
			retryT = nil
		}
	}

	// The tenure ends (or shutdown): stop every shard, wait for all.
	for _, w := range workers {
		if !w.stopping {
			w.stopping = true
			w.cancel(errStopping)
		}
	}
	for len(workers) > 0 {
		onDone(<-done)
	}
	if runCtx.Err() != nil && err == nil {
		s.leave(runCtx, epoch)
	}
	s.log.Info("Member tenure ended", "epoch", epoch)
	return err
}

func (s *Shards) mismatch(k int) error {
	return fmt.Errorf("%w: Lease %s/%s holds %d shards, this replica is configured with %d; use the same number in every replica (changing it needs a new group)",
		ErrShardCountMismatch, s.cfg.Namespace, AssignmentName(s.cfg.Group), k, s.cfg.Shards)
}

func (s *Shards) setWorking(workers map[int]*worker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.working = make(map[int]elector.Token, len(workers))
	for i, w := range workers {
		s.working[i] = elector.Token(w.token)
	}
	s.metrics.setOwned(len(workers))
}

// handOn completes the handoffs asked of this replica for shards whose
// work has stopped: one write moves them to their targets, each with the
// next token. The write carries the resourceVersion read, so it applies
// only if the shards are still this tenure's.
func (s *Shards) handOn(ctx context.Context, epoch int64, give []int, workers map[int]*worker) {
	n := 0
	err := s.writeTable(ctx, func(t *Table) bool {
		n = 0
		for _, i := range give {
			sl := &t.Shards[i]
			if sl.Owner != s.cfg.Identity || sl.Epoch != epoch || sl.HandoffTo == "" || workers[i] != nil {
				continue
			}
			sl.Owner, sl.Epoch, sl.Token = sl.HandoffTo, sl.HandoffEpoch, sl.Token+1
			sl.HandoffTo, sl.HandoffEpoch = "", 0
			n++
		}
		return n > 0
	})
	if err != nil {
		s.retrying("Unable to hand shards on, retrying on the next change", err)
		return
	}
	if n > 0 {
		s.metrics.moved(moveHandedOff, n)
		s.log.Info("Handed shards on", "shards", n)
	}
}

// leave hands this tenure's shards, whose work has stopped, to the other
// live members at shutdown: a pending handoff to its target, the others to
// the least-loaded member each, with the next token, in one write. With
// no other live member they are released (unowned) so that the next
// replica takes them at once.
func (s *Shards) leave(runCtx context.Context, epoch int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(runCtx), s.cfg.APITimeout)
	defer cancel()
	var handed, released int
	err := s.writeTable(ctx, func(t *Table) bool {
		handed, released = 0, 0
		live, _ := s.view.live(s.clk.Now())
		others := map[tenure]bool{}
		load := map[string]int{}
		for _, m := range live {
			if epoch, leaving := t.Leaving[m.id]; leaving && epoch == m.epoch {
				continue
			}
			if m.id != s.cfg.Identity {
				others[m] = true
				load[m.id] = 0
			}
		}
		for _, sl := range t.Shards {
			if others[tenure{sl.Owner, sl.Epoch}] {
				load[sl.Owner]++
			}
		}
		for i := range t.Shards {
			sl := &t.Shards[i]
			if sl.Owner != s.cfg.Identity || sl.Epoch != epoch {
				continue
			}
			to := tenure{sl.HandoffTo, sl.HandoffEpoch}
			if !others[to] {
				to = leastLoaded(others, load)
			}
			sl.HandoffTo, sl.HandoffEpoch = "", 0
			if to.id == "" {
				sl.Owner, sl.Epoch = "", 0 // the token grows when it is assigned
				released++
				continue
			}
			sl.Owner, sl.Epoch, sl.Token = to.id, to.epoch, sl.Token+1
			load[to.id]++
			handed++
		}
		if t.Leaving == nil {
			t.Leaving = map[string]int64{}
		}
		t.Leaving[s.cfg.Identity] = epoch
		return true
	})
	if err != nil {
		s.log.Info("Unable to hand shards on at shutdown; they move after the lease duration", "error", err)
		return
	}
	s.metrics.moved(moveHandedOff, handed)
	s.metrics.moved(moveReleased, released)
	if handed+released > 0 {
		s.log.Info("Handed shards on at shutdown", "handed", handed, "released", released)
	}
}

func leastLoaded(members map[tenure]bool, load map[string]int) tenure {
	var best tenure
	for m := range members {
		if best.id == "" || load[m.id] < load[best.id] || load[m.id] == load[best.id] && m.id < best.id {
			best = m
		}
	}
	return best
}

// writeTable applies mutate to the newest table known and writes it with
// the resourceVersion read; on a conflict it reads the table again and
// retries. mutate reports whether it changed anything.
func (s *Shards) writeTable(ctx context.Context, mutate func(t *Table) bool) error {
	for attempt := 0; attempt < assignmentAttempts; attempt++ {
		l, t, ok, deleted := s.view.current()
		if !ok || deleted {
			return nil
		}
		if !mutate(&t) {
			return nil
		}
		t.Generation++
		c := l.DeepCopy()
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[AnnotationShards] = t.encode()
		rctx, cancel := context.WithTimeout(ctx, s.cfg.APITimeout)
		got, err := s.cfg.Leases.Update(rctx, c, metav1.UpdateOptions{})
		cancel()
		switch {
		case err == nil:
			s.metrics.wrote("ok")
			s.view.adopt(got)
			return nil
		case apierrors.IsConflict(err):
			s.metrics.wrote("conflict")
			if err := s.readTable(ctx); err != nil {
				return err
			}
		default:
			s.metrics.wrote("error")
			return fmt.Errorf("unable to update Lease %s: %w", c.Name, err)
		}
	}
	return fmt.Errorf("unable to update Lease %s: %d conflicts in a row", AssignmentName(s.cfg.Group), assignmentAttempts)
}

// readTable reads the assignment Lease (a consistent read) into the view.
func (s *Shards) readTable(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.APITimeout)
	defer cancel()
	l, err := s.cfg.Leases.Get(rctx, AssignmentName(s.cfg.Group), metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("unable to get Lease %s: %w", AssignmentName(s.cfg.Group), err)
	}
	s.view.replace(l)
	return nil
}

// coordinate is the coordinator's work: it creates the assignment, fences
// expired members that own shards, assigns orphaned shards and asks
// over-quota owners for handoffs, one write per round.
func (s *Shards) coordinate(ctx context.Context, term elector.Term) error {
	changed, stop := s.watch.Notify()
	defer stop()
	s.log.Info("Coordinating the group", "token", term.Token)
	var timer clock.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for ctx.Err() == nil {
		next, again, err := s.planRound(ctx)
		if err != nil {
			return err
		}
		if again {
			continue
		}
		if timer != nil {
			timer.Stop()
			timer = nil
		}
		var timerC <-chan time.Time
		if !next.IsZero() {
			timer = s.clk.NewTimer(max(next.Sub(s.clk.Now()), time.Millisecond))
			timerC = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-timerC:
			timer = nil
		}
	}
	return nil
}

// planRound runs one round of the coordinator. It returns when to run
// again at the latest (zero: on the next change) and whether to run again
// at once.
func (s *Shards) planRound(ctx context.Context) (next time.Time, again bool, err error) {
	now := s.clk.Now()
	snap, synced := s.watch.Snapshot()
	s.view.refresh(snap, synced, now)
	if !s.view.isSynced() {
		return time.Time{}, false, nil
	}
	if err := s.view.tableError(); err != nil {
		// Neither create (it exists) nor plan (on an older table): wait
		// for a readable version, from the watch or a read after the
		// backoff, and say why.
		return s.unreadableTable(ctx, now, err), false, nil
	}
	s.badTable = backoff{}
	_, t, ok, deleted := s.view.current()
	if !ok || deleted {
		return s.createTable(ctx, t, ok, now)
	}
	if len(t.Shards) != s.cfg.Shards {
		return time.Time{}, false, s.mismatch(len(t.Shards))
	}
	live, nextExpiry := s.view.live(now)
	next = nextExpiry

	// Judge every tenure the table names; fence the expired ones.
	judged := map[tenure]status{}
	judge := func(id string, epoch int64) {
		tn := tenure{id, epoch}
		if id == "" {
			return
		}
		if _, ok := judged[tn]; ok {
			return
		}
		st, lease, expiry := s.view.ownerStatus(id, epoch, now)
		if st == unconfirmed {
			st, expiry = s.confirm(ctx, id, epoch, now)
		}
		if st == expired {
			if s.fence(ctx, lease) {
				st = gone
			} else {
				// The member renewed (the watch will say so) or the API
				// failed: judge again after the retry period at the latest.
				st, expiry = waiting, now.Add(s.cfg.RetryPeriod)
			}
		}
		if st == waiting && !expiry.IsZero() && (next.IsZero() || expiry.Before(next)) {
			next = expiry
		}
		judged[tn] = st
	}
	for _, sl := range t.Shards {
		judge(sl.Owner, sl.Epoch)
		judge(sl.HandoffTo, sl.HandoffEpoch)
	}
	for id, epoch := range t.Leaving {
		judge(id, epoch)
	}
	isGone := func(id string, epoch int64) bool {
		st, ok := judged[tenure{id, epoch}]
		if !ok {
			st, _, _ = s.view.ownerStatus(id, epoch, now)
		}
		return st == gone
	}
	// Moves between live members wait until the membership has not
	// changed for membershipSettle: replicas of one scale-up join within
	// moments of each other, and planning for each in turn would move
	// shards to members that are over quota a moment later.
	sig := fmt.Sprint(live)
	if sig != s.lastMembers {
		s.lastMembers, s.membersChanged = sig, now
	}
	settled := !now.Before(s.membersChanged.Add(s.settle()))
	if !settled && (next.IsZero() || s.membersChanged.Add(s.settle()).Before(next)) {
		next = s.membersChanged.Add(s.settle())
	}
	var mv moves
	err = s.writeTable(ctx, func(t *Table) bool {
		var nt Table
		nt, mv = plan(*t, live, isGone, settled)
		*t = nt
		return mv.any()
	})
	if err != nil {
		s.retrying("Unable to write the assignment, retrying", err)
		return now.Add(s.cfg.RetryPeriod), false, nil
	}
	if mv.any() {
		s.metrics.moved(moveAssigned, mv.assigned)
		s.metrics.moved(moveRequested, mv.handoffs)
		s.log.Info("Balanced the shards", "members", len(live), "assigned", mv.assigned, "handoffs", mv.handoffs, "cleared", mv.cleared)
	}
	return next, false, nil
}

// fence ends an expired member tenure: an update of its member Lease, with
// the resourceVersion this replica judged expired, that empties the
// holder. If the member renewed meanwhile, the update conflicts and
// nothing changes. It reports whether the fence was written.
func (s *Shards) fence(ctx context.Context, l *coordinationv1.Lease) bool {
	if l == nil {
		return false
	}
	c := l.DeepCopy()
	empty := ""
	c.Spec.HolderIdentity = &empty
	rctx, cancel := context.WithTimeout(ctx, s.cfg.APITimeout)
	defer cancel()
	_, err := s.cfg.Leases.Update(rctx, c, metav1.UpdateOptions{})
	if err != nil {
		s.retrying("Unable to fence an expired member", err, "lease", l.Name)
		return false
	}
	s.metrics.fenced()
	holder := ""
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	s.log.Info("Fenced an expired member", "lease", l.Name, "member", holder)
	return true
}

// confirm reads the member Lease of a tenure that this replica's view
// shows absent or in an older epoch than the table names (the watch may
// lag the table). If the API answers that it does not exist or is in an
// older epoch, it was re-created after the table named the tenure: the
// tenure is gone a lease duration after that answer. A newer epoch, or a
// release in the tenure's epoch, means gone now. Otherwise (the tenure is
// current; the watch lags) or if the read fails, it is judged again after
// the retry period. It returns the status and when it may change.
func (s *Shards) confirm(ctx context.Context, id string, epoch int64, now time.Time) (status, time.Time) {
	name := MemberName(s.cfg.Group, id)
	rctx, cancel := context.WithTimeout(ctx, s.cfg.APITimeout)
	l, err := s.cfg.Leases.Get(rctx, name, metav1.GetOptions{})
	cancel()
	var read member
	if err == nil {
		read.lease = l
	}
	switch {
	case err == nil && (read.epoch() > epoch || read.epoch() == epoch && read.holder() == ""):
		return gone, time.Time{}
	case apierrors.IsNotFound(err) || err == nil && read.epoch() < epoch:
		s.view.confirmOver(tenure{id, epoch}, s.clk.Now())
		st, _, expiry := s.view.ownerStatus(id, epoch, now)
		if st == waiting {
			s.log.Info("Member Lease was deleted or re-created; its shards move after the lease duration", "lease", name, "member", id, "epoch", epoch, "at", expiry)
		}
		return st, expiry
	case err != nil:
		s.retrying("Unable to read a member Lease, retrying", err, "lease", name, "member", id, "after", s.cfg.RetryPeriod.String())
	}
	s.view.checkLater(id, now.Add(s.cfg.RetryPeriod))
	return waiting, now.Add(s.cfg.RetryPeriod)
}

// unreadableTable handles an assignment Lease this replica cannot parse
// (a newer format, a hand edit): it logs why, with the Lease's version, and
// reads the Lease again after a backoff that doubles up to
// maxTableBackoff (the watch brings a fixed version sooner). It returns
// when to look again.
func (s *Shards) unreadableTable(ctx context.Context, now time.Time, err error) time.Time {
	if !s.badTable.due(now) {
		return s.badTable.at
	}
	if s.badTable.tries > 0 {
		if rerr := s.readTable(ctx); rerr != nil {
			err = rerr
		} else if err = s.view.tableError(); err == nil {
			s.badTable = backoff{}
			return now // readable now: plan at once
		}
	}
	d := s.badTable.next(now, s.cfg.RetryPeriod, maxTableBackoff)
	rv := ""
	if l := s.view.assignmentLease(); l != nil {
		rv = l.ResourceVersion
	}
	s.log.Error("Unable to read the assignment; not planning until it is fixed", "lease", AssignmentName(s.cfg.Group), "resourceVersion", rv, "error", err, "retryIn", d.String())
	return s.badTable.at
}

// maxTableBackoff bounds the wait between reads of an assignment Lease
// that cannot be parsed: a fix by hand is noticed within a minute even if
// the watch missed it, at a cost of one GET a minute.
const maxTableBackoff = time.Minute

// backoff is a delay that doubles from a base up to a limit.
type backoff struct {
	tries int
	delay time.Duration
	at    time.Time // the next attempt
}

func (b *backoff) due(now time.Time) bool { return b.at.IsZero() || !now.Before(b.at) }

// next records an attempt at now and returns the delay until the next.
func (b *backoff) next(now time.Time, base, limit time.Duration) time.Duration {
	b.tries++
	b.delay = min(max(2*b.delay, base), limit)
	b.at = now.Add(b.delay)
	return b.delay
}

// createTable creates the assignment Lease: all shards unowned when this
// replica never saw one, else (it was deleted) the last table seen with
// every token raised by one, so that tokens keep growing. It returns when
// to plan again at the latest and whether to plan again at once.
func (s *Shards) createTable(ctx context.Context, last Table, hadOne bool, now time.Time) (time.Time, bool, error) {
	t := Table{Format: tableFormat, Shards: make([]Slot, s.cfg.Shards)}
	if hadOne {
		t = last
		t.Generation++
		for i := range t.Shards {
			t.Shards[i].Token++
		}
	}
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
		Name:        AssignmentName(s.cfg.Group),
		Namespace:   s.cfg.Namespace,
		Labels:      map[string]string{LabelGroup: s.cfg.Group, LabelRole: RoleAssignment},
		Annotations: map[string]string{AnnotationShards: t.encode()},
	}}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.APITimeout)
	defer cancel()
	got, err := s.cfg.Leases.Create(rctx, l, metav1.CreateOptions{})
	switch {
	case err == nil:
		s.view.replace(got)
		s.log.Info("Created the assignment", "shards", s.cfg.Shards, "generation", t.Generation)
		return time.Time{}, true, nil
	case apierrors.IsAlreadyExists(err):
		if err := s.readTable(ctx); err != nil {
			s.retrying("Unable to read the assignment, retrying", err, "after", s.cfg.RetryPeriod.String())
			return now.Add(s.cfg.RetryPeriod), false, nil
		}
		// Plan at once: on the table read, or (it cannot be parsed)
		// into the backoff of unreadableTable.
		return time.Time{}, true, nil
	default:
		s.retrying("Unable to create the assignment, retrying", err, "after", s.cfg.RetryPeriod.String())
		return now.Add(s.cfg.RetryPeriod), false, nil
	}
}

// Assignment is a snapshot of a group as one replica sees it (the sidecar
// serves it on /shards).
type Assignment struct {
	Group    string `json:"group"`
	Shards   int    `json:"shards"`
	Identity string `json:"identity"`
	// Synced is false until this replica has read the group.
	Synced bool `json:"synced"`
	// Generation of the table seen.
	Generation int64 `json:"generation"`
	// Running lists the shards whose function runs in this replica, with
	// their tokens.
	Running []Owned `json:"running"`
	// Table has every shard's owner, token and pending handoff.
	Table []TableEntry `json:"table"`
	// Members lists the replicas this one knows, with the shards each
	// owns.
	Members []Member `json:"members"`
}

// Owned is a shard whose function runs here.
type Owned struct {
	Shard int           `json:"shard"`
	Token elector.Token `json:"token"`
}

// TableEntry is one shard's entry of the table.
type TableEntry struct {
	Shard     int           `json:"shard"`
	Owner     string        `json:"owner"`
	Token     elector.Token `json:"token"`
	HandoffTo string        `json:"handoffTo,omitempty"`
}

// Member is a replica of the group.
type Member struct {
	Identity string `json:"identity"`
	// Live is false for a member whose Lease is released or expired on
	// this replica's clock.
	Live   bool  `json:"live"`
	Shards []int `json:"shards"`
}

// Assignment returns this replica's view of the group.
func (s *Shards) Assignment() Assignment {
	a := Assignment{
		Group: s.cfg.Group, Shards: s.cfg.Shards, Identity: s.cfg.Identity, Synced: s.view.isSynced(),
		Running: []Owned{}, Table: []TableEntry{}, Members: []Member{},
	}
	s.mu.Lock()
	for i, tok := range s.working {
		a.Running = append(a.Running, Owned{Shard: i, Token: tok})
	}
	s.mu.Unlock()
	sort.Slice(a.Running, func(i, j int) bool { return a.Running[i].Shard < a.Running[j].Shard })
	now := s.clk.Now()
	live, _ := s.view.live(now)
	members := map[string]*Member{}
	for _, m := range live {
		members[m.id] = &Member{Identity: m.id, Live: true, Shards: []int{}}
	}
	if _, t, ok, deleted := s.view.current(); ok && !deleted {
		a.Generation = t.Generation
		for i, sl := range t.Shards {
			a.Table = append(a.Table, TableEntry{Shard: i, Owner: sl.Owner, Token: elector.Token(sl.Token), HandoffTo: sl.HandoffTo})
			if sl.Owner == "" {
				continue
			}
			m := members[sl.Owner]
			if m == nil {
				m = &Member{Identity: sl.Owner, Shards: []int{}}
				members[sl.Owner] = m
			}
			m.Shards = append(m.Shards, i)
		}
	}
	for _, m := range members {
		a.Members = append(a.Members, *m)
	}
	sort.Slice(a.Members, func(i, j int) bool { return a.Members[i].Identity < a.Members[j].Identity })
	return a
}

// Changes returns a channel that receives a value, coalesced, whenever
// the group's Leases change, and a function that stops it; read
// Assignment after each (the sidecar's /watch does).
func (s *Shards) Changes() (<-chan struct{}, func()) {
	return s.watch.Notify()
}

// Deadline returns, while this replica's member tenure runs, the time on
// its clock by which the work on all its shards must have stopped unless
// a renewal succeeds first (see elector.Elector.Deadline); a watchdog
// outside the process (the sidecar's) can enforce it.
func (s *Shards) Deadline() (time.Time, bool) { return s.member.Deadline() }

// Check is a health check in the shape of controller-runtime's
// healthz.Checker: it fails while shard functions run past the renew
// deadline of the member Lease (see elector.Elector.Check).
func (s *Shards) Check(r *http.Request) error { return s.member.Check(r) }

// Synced reports whether this replica has read the group's Leases once.
func (s *Shards) Synced() bool { return s.view.isSynced() }

// Err returns what keeps this replica from taking part normally: a failed
// member renewal, an assignment Lease it cannot parse (it runs no shard
// meanwhile), or a failed watch; nil when all is well.
func (s *Shards) Err() error {
	if err := s.member.Err(); err != nil {
		return err
	}
	if err := s.view.tableError(); err != nil {
		return err
	}
	return s.watch.Err()
}
