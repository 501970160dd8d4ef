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

package ctrl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/elector-dev/elector"
)

// inClusterNamespacePath holds the Pod's namespace in every container
// that mounts a ServiceAccount token; controller-runtime defaults
// LeaderElectionNamespace from it, and so does NewManager.
const inClusterNamespacePath = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// namespaceFile is inClusterNamespacePath, a variable for tests.
var namespaceFile = inClusterNamespacePath

// userAgentSuffix marks the election's requests in the API server's logs,
// as controller-runtime's "leader-election" does.
const userAgentSuffix = "leader-election"

// Option tunes the elector.Config that NewManager derives from
// manager.Options, for what manager.Options cannot say.
type Option func(*elector.Config)

// WithIdentity sets the candidate's identity in the Lease. The default is
// controller-runtime's: the host name, "_" and a random UUID.
func WithIdentity(id string) Option {
	return func(c *elector.Config) { c.Identity = id }
}

// WithStopGrace sets how long leader-only runnables get to return once
// told to stop (at shutdown, or when renewals keep failing); see
// elector.Config.StopGrace.
func WithStopGrace(d time.Duration) Option {
	return func(c *elector.Config) { c.StopGrace = d }
}

// WithConfig lets f change any field of the elector.Config, such as
// Logger, Registerer or Clock. Namespace and Name come from
// manager.Options; changing them is an error.
func WithConfig(f func(*elector.Config)) Option { return Option(f) }

// Manager is a controller-runtime manager whose leader election is done
// by elector. It embeds the inner manager, which has controller-runtime's
// election turned off, and replaces Add, Start and Elected.
type Manager struct {
	manager.Manager

	el      *elector.Elector // nil when LeaderElection is off
	log     logr.Logger
	elected chan struct{}
	// over ends when the term does, or when the campaign ends without
	// one; warm-up contexts end with it.
	over    context.Context
	endOver context.CancelFunc
	id      string // this candidate's identity in the Lease

	mu      sync.Mutex
	started bool
	phase   phase
	pending []manager.Runnable // leader-only, added before the term began
	term    context.Context    // the term's context while phase == leading
	fail    context.CancelCauseFunc
	wg      sync.WaitGroup // leader-only runnables that have not returned
	runErr  error          // what the campaign returned
	// handedOff is closed when the term ended in a planned handoff.
	handedOff chan struct{}
}

type phase int

const (
	waiting phase = iota // no term yet
	leading              // the term runs
	ended                // the term is over: no runnable starts any more
)

var _ manager.Manager = (*Manager)(nil)

// errHandedOff ends the inner manager's Start after a planned handoff
// (see Start).
var errHandedOff = fmt.Errorf("elector ctrl: the term ended in a planned handoff: %w", elector.ErrHandedOff)

// errTermEnded is returned by Add once the term has ended.
var errTermEnded = errors.New("elector ctrl: unable to add a leader-only runnable: this process's term has ended (one term per process)")

// NewManager is a drop-in for controller-runtime's ctrl.NewManager
// (manager.New) that runs leader election with elector. With
// LeaderElection off it only wraps manager.New.
//
// From opts it reads LeaderElection, LeaderElectionID,
// LeaderElectionNamespace (default: the Pod's namespace, read from the
// ServiceAccount mount as controller-runtime does), LeaseDuration,
// RenewDeadline, RetryPeriod (defaults 15s, 10s, 2s, as controller-runtime
// and elector), LeaderElectionReleaseOnCancel (false, controller-runtime's
// default, keeps the Lease at shutdown, so the next leader waits for it to
// expire, and is logged at start; true releases it after every leader-only
// runnable has returned, which makes a SIGTERM hand over in milliseconds and
// is safe whether or not the process exits at once) and LeaderElectionConfig
// (the rest.Config for the Lease requests). GracefulShutdownTimeout and
// BaseContext keep their meaning: the context of leader-only runnables
// derives from BaseContext. It rejects LeaderElectionLabels,
// LeaderElectionResourceLockInterface and any LeaderElectionResourceLock
// other than "leases", which elector does not support.
func NewManager(cfg *rest.Config, opts manager.Options, options ...Option) (manager.Manager, error) {
	if cfg == nil {
		return nil, errors.New("elector ctrl: unable to create a manager: cfg must not be nil")
	}
	if !opts.LeaderElection {
		inner, err := manager.New(cfg, opts)
		if err != nil {
			return nil, err
		}
		return &Manager{Manager: inner, elected: nil}, nil
	}
	ecfg, err := electorConfig(cfg, opts, options)
	if err != nil {
		return nil, err
	}
	el, err := elector.New(ecfg)
	if err != nil {
		return nil, fmt.Errorf("elector ctrl: unable to create the elector: %w", err)
	}
	if ecfg.KeepLease && ecfg.Logger != nil {
		// controller-runtime's default, and a slow handoff: say so once.
		// Releasing is safe here, unlike with controller-runtime's own
		// election: the Lease is released only after every leader-only
		// runnable has returned.
		d := ecfg.LeaseDuration
		if d == 0 {
			d = elector.DefaultLeaseDuration
		}
		ecfg.Logger.Info("LeaderElectionReleaseOnCancel is off: at shutdown the Lease is kept and the next leader waits for it to expire",
			"lease", ecfg.Namespace+"/"+ecfg.Name, "leaseDuration", d.String(),
			"fix", "set LeaderElectionReleaseOnCancel: true to hand over in milliseconds; elector releases the Lease only after every leader-only runnable has returned")
	}

	inner := opts
	inner.LeaderElection = false
	inner.LeaderElectionResourceLockInterface = nil
	m, err := manager.New(cfg, inner)
	if err != nil {
		return nil, err
	}
	over, endOver := context.WithCancel(context.Background())
	return &Manager{
		Manager:   m,
		el:        el,
		log:       m.GetLogger().WithName("leaderelection"),
		elected:   make(chan struct{}),
		over:      over,
		endOver:   endOver,
		id:        ecfg.Identity,
		handedOff: make(chan struct{}),
	}, nil
}

// electorConfig checks the election options and derives the elector's
// Config from them.
func electorConfig(cfg *rest.Config, opts manager.Options, options []Option) (elector.Config, error) {
	switch {
	case opts.LeaderElectionID == "":
		return elector.Config{}, errors.New("elector ctrl: LeaderElectionID must be set when LeaderElection is on (the Lease's name)")
	case opts.LeaderElectionResourceLock != "" && opts.LeaderElectionResourceLock != resourcelock.LeasesResourceLock:
		return elector.Config{}, fmt.Errorf("elector ctrl: LeaderElectionResourceLock %q is not supported: elector uses Leases only; leave it empty or set it to %q", opts.LeaderElectionResourceLock, resourcelock.LeasesResourceLock)
	case opts.LeaderElectionResourceLockInterface != nil:
		return elector.Config{}, errors.New("elector ctrl: LeaderElectionResourceLockInterface is not supported: it swaps the lock under client-go's election loop, which elector replaces; remove it and set LeaderElectionID and LeaderElectionNamespace")
	case len(opts.LeaderElectionLabels) > 0:
		return elector.Config{}, errors.New("elector ctrl: LeaderElectionLabels is not supported: elector does not label the Lease; remove it (to route to the leader, label the Pod from the leader instead)")
	}
	ns := opts.LeaderElectionNamespace
	if ns == "" {
		b, err := os.ReadFile(namespaceFile)
		if err != nil {
			return elector.Config{}, fmt.Errorf("elector ctrl: unable to find the Pod's namespace in %s (not running in a cluster?); set LeaderElectionNamespace: %w", namespaceFile, err)
		}
		ns = strings.TrimSpace(string(b))
	}
	host, err := os.Hostname()
	if err != nil {
		return elector.Config{}, fmt.Errorf("elector ctrl: unable to get the host name for the identity; set one with WithIdentity: %w", err)
	}

	lcfg := cfg
	if opts.LeaderElectionConfig != nil {
		lcfg = opts.LeaderElectionConfig
	}
	client, err := leaseClient(rest.AddUserAgent(rest.CopyConfig(lcfg), userAgentSuffix), ns)
	if err != nil {
		return elector.Config{}, err
	}

	logger := opts.Logger
	if logger.GetSink() == nil {
		logger = log.Log
	}
	ecfg := elector.Config{
		Namespace:  ns,
		Name:       opts.LeaderElectionID,
		Identity:   host + "_" + string(uuid.NewUUID()),
		KeepLease:  !opts.LeaderElectionReleaseOnCancel,
		Logger:     slog.New(logr.ToSlogHandler(logger.WithName("leaderelection"))),
		Registerer: metrics.Registry,
	}
	client(&ecfg)
	if opts.LeaseDuration != nil {
		ecfg.LeaseDuration = *opts.LeaseDuration
	}
	if opts.RenewDeadline != nil {
		ecfg.RenewDeadline = *opts.RenewDeadline
	}
	if opts.RetryPeriod != nil {
		ecfg.RetryPeriod = *opts.RetryPeriod
	}
	for _, o := range options {
		o(&ecfg)
	}
	if ecfg.Namespace != ns || ecfg.Name != opts.LeaderElectionID {
		return elector.Config{}, fmt.Errorf("elector ctrl: an Option changed the Lease to %s/%s: set LeaderElectionNamespace and LeaderElectionID instead", ecfg.Namespace, ecfg.Name)
	}
	if err := ecfg.Validate(); err != nil {
		return elector.Config{}, fmt.Errorf("elector ctrl: invalid leader election options: %w", err)
	}
	return ecfg, nil
}

// Elector returns the elector that campaigns for this manager, for its
// Leader, Subscribe and Err; nil when LeaderElection is off.
func (m *Manager) Elector() *elector.Elector { return m.el }

// Elected is closed when this replica begins to lead (at once with
// LeaderElection off).
func (m *Manager) Elected() <-chan struct{} {
	if m.el == nil {
		return m.Manager.Elected()
	}
	return m.elected
}

// Add adds r to the manager. A runnable that needs leader election by
// controller-runtime's rules — a LeaderElectionRunnable whose
// NeedLeaderElection returns true, or any Runnable that is not a
// LeaderElectionRunnable, cache, webhook server or server that says
// otherwise — starts only while this replica leads, with the term in its
// context; its Warmup, if it has one, runs before, on every replica.
// Everything else goes to the inner manager as is.
func (m *Manager) Add(r manager.Runnable) error {
	if m.el == nil || !needsLeader(r) {
		return m.Manager.Add(r)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.phase == ended {
		return errTermEnded
	}
	if w, ok := r.(warmupRunnable); ok {
		if err := m.Manager.Add(warmup{w, m.over}); err != nil {
			return err
		}
	}
	if m.phase == leading {
		m.launch(r)
		return nil
	}
	m.pending = append(m.pending, r)
	return nil
}

// warmupRunnable is controller-runtime's (unexported) interface of
// runnables that warm up before their manager leads, such as controllers
// with EnableWarmup.
type warmupRunnable interface {
	Warmup(context.Context) error
}

// warmup hands a leader-only runnable's Warmup to the inner manager, which
// runs it at the point it would with its own election; Start does nothing
// (the runnable itself starts with the term) and needs no election.
//
// The context given to Warmup also ends with the term: a controller that
// warmed up ties its work queue to that context, not to the one given to
// Start, and its workers keep reconciling until the queue shuts down.
// With controller-runtime's own election that happens when the process
// stops; here the term may end first (a lost Lease), and the workers must
// stop then.
type warmup struct {
	w    warmupRunnable
	over context.Context
}

func (w warmup) Warmup(ctx context.Context) error {
	// Not cancelled when Warmup returns: the runnable keeps using ctx.
	ctx, cancel := context.WithCancel(ctx)
	context.AfterFunc(w.over, cancel)
	return w.w.Warmup(ctx)
}
func (warmup) Start(context.Context) error { return nil }
func (warmup) NeedLeaderElection() bool    { return false }

// hasCache is how controller-runtime recognises a cluster (it goes with
// the caches, never behind the election).
type hasCache interface {
	GetCache() cache.Cache
}

// needsLeader reports whether controller-runtime (v0.25's
// runnables.Add) would put r in its leader election group.
func needsLeader(r manager.Runnable) bool {
	switch r := r.(type) {
	case *manager.Server:
		return r.NeedLeaderElection()
	case hasCache:
		return false
	case webhook.Server:
		return false
	case manager.LeaderElectionRunnable:
		return r.NeedLeaderElection()
	default:
		return true
	}
}

// Start starts the manager and blocks until its context ends, the term
// ends, or a runnable fails. Every replica starts the HTTP servers,
// webhooks, caches and runnables that need no election; then the
// campaign starts, where controller-runtime would start its election, and
// runs the leader-only runnables for one term. Start returns:
//
//   - nil when ctx ended and everything stopped (the Lease was released if
//     LeaderElectionReleaseOnCancel is set);
//   - an error wrapping elector.ErrLeadershipLost when the Lease was lost
//     (after every leader-only runnable returned);
//   - the error of the first leader-only runnable that failed while
//     leading, after the others returned and the Lease was released;
//   - an error wrapping elector.ErrHandedOff after a planned handoff
//     (kubectl elector handoff): the runnables returned and the Lease was
//     handed on; the process may exit 0 and be restarted as a candidate;
//   - elector's other errors (ErrStopOverrun, *ForbiddenError, ...), and
//     the inner manager's.
//
// Exit the process when Start returns: a term cannot start again.
func (m *Manager) Start(ctx context.Context) error {
	if m.el == nil {
		return m.Manager.Start(ctx)
	}
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("elector ctrl: manager already started")
	}
	m.started = true
	m.mu.Unlock()
	// The inner manager puts the campaign in its leader election group,
	// which it starts after the caches have synced and warm-up has begun,
	// and stops after the runnables that need no election and before the
	// caches: where it would run client-go's election.
	if err := m.Manager.Add(campaign{m}); err != nil {
		return fmt.Errorf("elector ctrl: unable to add the campaign: %w", err)
	}
	err := m.Manager.Start(ctx)
	m.mu.Lock()
	runErr := m.runErr
	m.mu.Unlock()
	switch {
	case runErr == nil || errors.Is(err, runErr):
		return err
	case err == nil:
		// The inner manager was stopping: it only logs errors then.
		return runErr
	default:
		return errors.Join(err, runErr)
	}
}

// campaign runs the election for the inner manager.
type campaign struct{ m *Manager }

func (campaign) NeedLeaderElection() bool { return true }

func (c campaign) Start(ctx context.Context) error {
	m := c.m
	// A planned handoff ends the term but not Run, which campaigns on.
	// The controllers cannot start again, so once the Lease is handed on
	// the campaign ends, and with it Start.
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-m.handedOff:
		case <-rctx.Done():
			return
		}
		for v := range m.el.Subscribe(rctx) {
			if !v.Self && v.Identity != m.id {
				m.log.Info("Handed the Lease on; one term per process, so the manager stops", "holder", v.Identity)
				stop()
			}
		}
	}()
	err := m.el.Run(rctx, m.lead)
	m.endOver()
	m.mu.Lock()
	m.phase = ended
	m.pending = nil
	m.mu.Unlock()
	select {
	case <-m.handedOff:
		if err == nil {
			return errHandedOff
		}
	default:
		if err == nil && ctx.Err() == nil {
			err = errors.New("elector ctrl: the term ended")
		}
	}
	if err != nil {
		err = fmt.Errorf("elector ctrl: unable to lead: %w", err)
		m.mu.Lock()
		m.runErr = err
		m.mu.Unlock()
	}
	return err
}

// lead is the term: it starts the leader-only runnables, waits for the
// term to end (ctx is cancelled) or for one of them to fail, and returns
// once every one of them has returned.
func (m *Manager) lead(ctx context.Context, term elector.Term) error {
	tctx, fail := context.WithCancelCause(withTerm(ctx, term))
	defer fail(nil)
	m.mu.Lock()
	if m.phase != waiting {
		// A second tenure of Run, after a handoff: runnables cannot
		// start twice. Returning ends it (the Lease is released).
		m.mu.Unlock()
		return errTermEnded
	}
	m.phase = leading
	m.term, m.fail = tctx, fail
	pending := m.pending
	m.pending = nil
	for _, r := range pending {
		m.launch(r)
	}
	m.mu.Unlock()
	m.log.Info("Started leader-only runnables", "token", int64(term.Token), "runnables", len(pending))
	close(m.elected)

	<-tctx.Done()
	m.mu.Lock()
	m.phase = ended
	m.mu.Unlock()
	m.endOver()
	m.wg.Wait()
	if errors.Is(context.Cause(tctx), elector.ErrHandedOff) {
		close(m.handedOff)
		return nil
	}
	if cause := context.Cause(tctx); ctx.Err() == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// launch starts r in the term. Called with m.mu held and phase == leading.
func (m *Manager) launch(r manager.Runnable) {
	ctx, fail := m.term, m.fail
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		err := r.Start(ctx)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			// Stopping: controller-runtime logs these too.
			if !errors.Is(err, context.Canceled) {
				m.log.Error(err, "Leader-only runnable failed while stopping", "runnable", fmt.Sprintf("%T", r))
			}
			return
		}
		fail(fmt.Errorf("unable to run %T: %w", r, err))
	}()
}
