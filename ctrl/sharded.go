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
	"maps"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/shard"
)

// shardUserAgentSuffix marks the shard group's Lease requests in the API
// server's logs.
const shardUserAgentSuffix = "sharding"

// ShardedOptions configures the shard group of a ShardedManager. Group
// and Shards are required; every replica of the operator uses the same
// Group, Shards and Key.
type ShardedOptions struct {
	// Group names the sharded operator: a DNS-1123 label of at most 40
	// characters; the group's Leases are <Group>-shards,
	// <Group>-coordinator and <Group>-m-<hash of the identity> (see
	// package shard).
	Group string
	// Shards is K, the number of hash ranges (1 to shard.MaxShards). It
	// cannot change while the group's Leases exist. Each shard a replica
	// owns costs one watch per watched type, so choose a small multiple
	// of the largest replica count (8 or 16 for up to 4 replicas).
	Shards int
	// Namespace holds the group's Leases. Empty means the Pod's
	// namespace, read from the ServiceAccount mount as NewManager does.
	Namespace string
	// Identity names this replica among the group's; unique and stable
	// across restarts of one Pod (its member Lease is named from it).
	// Empty means the host name, which is the Pod's name.
	Identity string
	// Key is the hashed field; empty means ShardByUID.
	Key ShardKey

	// LeaseDuration, RenewDeadline, RetryPeriod, StopGrace and APITimeout
	// are the member Lease's timings, which bound every shard this
	// replica owns (see shard.Config). Zero means elector's default.
	// StopGrace is also how long a shard's controllers get to return once
	// told to stop: the shard moves only after they have.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	StopGrace     time.Duration
	APITimeout    time.Duration

	// Leases reaches the Leases of Namespace. nil means a client built
	// from the manager's rest.Config (LeaderElectionConfig if set).
	Leases elector.LeaseClient
	// Clock is the time source; nil means the real clock.
	Clock clock.WithTicker
	// Logger receives the group's structured logs; nil means the
	// manager's logger (manager.Options.Logger, or controller-runtime's).
	Logger *slog.Logger
	// Registerer receives the group's Prometheus collectors; nil means
	// controller-runtime's registry, which the manager's /metrics serves.
	Registerer prometheus.Registerer
}

// withDefaults fills in what needs no I/O.
func (o ShardedOptions) withDefaults() ShardedOptions {
	if o.Key == "" {
		o.Key = ShardByUID
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = elector.DefaultLeaseDuration
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = elector.DefaultRenewDeadline
	}
	if o.RetryPeriod == 0 {
		o.RetryPeriod = elector.DefaultRetryPeriod
	}
	if o.StopGrace == 0 {
		// elector's rule: the default, capped to fit the timings.
		o.StopGrace = min(elector.DefaultStopGrace, (o.RenewDeadline-o.RetryPeriod)/2)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(logr.ToSlogHandler(log.Log))
	}
	if o.Registerer == nil {
		o.Registerer = metrics.Registry
	}
	return o
}

// shardConfig is the shard package's configuration for o.
func (o ShardedOptions) shardConfig() shard.Config {
	return shard.Config{
		Leases:        o.Leases,
		Namespace:     o.Namespace,
		Group:         o.Group,
		Identity:      o.Identity,
		Shards:        o.Shards,
		LeaseDuration: o.LeaseDuration,
		RenewDeadline: o.RenewDeadline,
		RetryPeriod:   o.RetryPeriod,
		StopGrace:     o.StopGrace,
		APITimeout:    o.APITimeout,
		Clock:         o.Clock,
		Logger:        o.Logger,
		Registerer:    o.Registerer,
	}
}

// Validate applies the defaults and checks every rule (those of
// shard.Config included); it returns the first *elector.ConfigError
// found. Namespace and Identity must be set here: NewShardedManager fills
// them in before it validates.
func (o ShardedOptions) Validate() error {
	o = o.withDefaults()
	if o.Key != ShardByUID && o.Key != ShardByNamespace {
		return &elector.ConfigError{Field: "Key", Value: fmt.Sprintf("%q", o.Key), Rule: fmt.Sprintf("must be %q or %q", ShardByUID, ShardByNamespace)}
	}
	if err := o.shardConfig().Validate(); err != nil {
		return fmt.Errorf("elector ctrl: invalid sharded options: %w", err)
	}
	return nil
}

// SetupFunc registers a shard's controllers with mgr, the manager of the
// range r: typically builder.ControllerManagedBy(mgr)...Complete(rec). It
// is called each time this replica begins to own a shard, with a new
// manager; it must not start anything itself.
type SetupFunc func(mgr manager.Manager, r Range) error

// ShardedManager runs a controller-runtime operator on several replicas,
// each watching and reconciling only the objects of the hash ranges it
// owns. Create it with NewShardedManager.
//
// It embeds a manager built by NewManager from the manager.Options
// given: that manager serves metrics, health probes and webhooks, and
// runs whatever is added to it directly — on every replica, or, with
// LeaderElection on, the leader-only runnables on one replica (put
// controllers that need to see every object there). The sharded
// controllers are registered by the SetupFunc in a manager of their own
// per owned shard (see NewShardedManager).
type ShardedManager struct {
	manager.Manager

	so      ShardedOptions
	cfg     *rest.Config
	opts    manager.Options // for the shards' managers
	setup   SetupFunc
	shards  *shard.Shards
	log     *slog.Logger
	metrics *shardedMetrics

	// fallbackOnce logs, once, that a list was not sharded by the server.
	fallbackOnce sync.Once

	mu     sync.Mutex
	runErr error // what the shard group returned
	// newChild builds a shard's manager (newShardManager).
	newChild func(r Range, term elector.Term) (manager.Manager, error)
	// stopped, if set, is called when a shard's function returns.
	stopped func(r Range)
}

// NewShardedManager returns a manager for a sharded operator: cfg and
// opts as for NewManager (which builds the embedded manager; options tune
// its election when opts.LeaderElection is on), so for the shard group,
// and setup to register the sharded controllers.
//
// For every shard this replica owns (package shard decides, with the
// guarantees of its doc), it builds a controller-runtime manager with
// the options of opts that concern the cache, client, scheme and
// controllers (no election, metrics, probes or webhooks: the embedded
// manager serves those), whose informers list and watch with the range's
// shardSelector (see Range.Selector) and also drop what lies outside the
// range, calls setup with it and starts it. Its reconcilers' contexts
// carry the shard's term (TermFrom: Token is the shard's fencing token)
// and range (RangeFrom). When the shard moves or this replica's tenure
// ends, the shard's manager is stopped, and the shard is handed on only
// after every reconcile and cache of it has returned.
//
// Controller names may repeat across shards: name validation is off in
// the shards' managers.
func NewShardedManager(cfg *rest.Config, opts manager.Options, so ShardedOptions, setup SetupFunc, options ...Option) (*ShardedManager, error) {
	if cfg == nil {
		return nil, errors.New("elector ctrl: unable to create a sharded manager: cfg must not be nil")
	}
	if setup == nil {
		return nil, errors.New("elector ctrl: unable to create a sharded manager: setup must not be nil (it registers the sharded controllers)")
	}
	if so.Namespace == "" {
		b, err := os.ReadFile(namespaceFile)
		if err != nil {
			return nil, fmt.Errorf("elector ctrl: unable to find the Pod's namespace in %s (not running in a cluster?); set ShardedOptions.Namespace: %w", namespaceFile, err)
		}
		so.Namespace = strings.TrimSpace(string(b))
	}
	if so.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("elector ctrl: unable to get the host name for the identity; set ShardedOptions.Identity: %w", err)
		}
		so.Identity = host
	}
	if so.Logger == nil {
		logger := opts.Logger
		if logger.GetSink() == nil {
			logger = log.Log
		}
		so.Logger = slog.New(logr.ToSlogHandler(logger.WithName("sharding")))
	}
	if so.Leases == nil {
		lcfg := cfg
		if opts.LeaderElectionConfig != nil {
			lcfg = opts.LeaderElectionConfig
		}
		client, err := leaseClient(rest.AddUserAgent(rest.CopyConfig(lcfg), shardUserAgentSuffix), so.Namespace)
		if err != nil {
			return nil, err
		}
		var ec elector.Config
		client(&ec)
		so.Leases = ec.Leases
	}
	if err := so.Validate(); err != nil {
		return nil, err
	}
	so = so.withDefaults()
	shards, err := shard.New(so.shardConfig())
	if err != nil {
		return nil, fmt.Errorf("elector ctrl: unable to create the shard group: %w", err)
	}
	sm, err := newShardedMetrics(so.Registerer, so.Namespace, so.Group)
	if err != nil {
		return nil, err
	}
	main, err := NewManager(cfg, opts, options...)
	if err != nil {
		return nil, err
	}
	m := &ShardedManager{
		Manager: main,
		so:      so,
		cfg:     cfg,
		opts:    opts,
		setup:   setup,
		shards:  shards,
		log:     so.Logger.With("group", so.Namespace+"/"+so.Group, "identity", so.Identity),
		metrics: sm,
	}
	m.newChild = m.newShardManager
	if err := main.Add(shardGroup{m}); err != nil {
		return nil, fmt.Errorf("elector ctrl: unable to add the shard group: %w", err)
	}
	return m, nil
}

// Shards returns the shard group, for its Assignment, Check, Synced and
// Err.
func (m *ShardedManager) Shards() *shard.Shards { return m.shards }

// Start starts the embedded manager, whose runnables include the shard
// group, and blocks until ctx ends or something fails. It returns nil
// after a shutdown in which every shard's controllers stopped and the
// shards were handed on; an error wrapping elector.ErrStopOverrun when a
// shard's controllers did not stop within StopGrace (exit the process:
// the shard moves once the member Lease expires); the shard group's
// other errors (an *elector.ForbiddenError, shard.ErrShardCountMismatch,
// a SetupFunc's error); and the embedded manager's (see Manager.Start).
// Exit the process when it returns.
func (m *ShardedManager) Start(ctx context.Context) error {
	err := m.Manager.Start(ctx)
	m.mu.Lock()
	runErr := m.runErr
	m.mu.Unlock()
	switch {
	case runErr == nil || errors.Is(err, runErr):
		return err
	case err == nil:
		return runErr
	default:
		return errors.Join(err, runErr)
	}
}

// shardGroup runs the shard group on every replica, as a runnable of the
// embedded manager that needs no election.
type shardGroup struct{ m *ShardedManager }

func (shardGroup) NeedLeaderElection() bool { return false }

func (g shardGroup) Start(ctx context.Context) error {
	m := g.m
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	err := m.shards.Run(ctx, func(sctx context.Context, i int, term elector.Term) error {
		return m.runShard(sctx, i, term, cancel)
	})
	if cause := context.Cause(ctx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	if err != nil {
		err = fmt.Errorf("elector ctrl: shard group %s: %w", m.so.Group, err)
		m.mu.Lock()
		m.runErr = err
		m.mu.Unlock()
	}
	return err
}

// runShard is one owned shard's function: it runs the shard's manager
// until ctx ends and returns only after the manager has stopped, that
// is, after every reconcile and informer of the shard returned. If that
// takes longer than StopGrace it fails the group with ErrStopOverrun (so
// that the process exits) and goes on waiting: the shard is never handed
// on while its controllers run.
func (m *ShardedManager) runShard(ctx context.Context, i int, term elector.Term, fail context.CancelCauseFunc) error {
	r, err := NewRange(m.so.Key, i, m.so.Shards)
	if err != nil {
		return err
	}
	if m.stopped != nil {
		defer m.stopped(r)
	}
	child, err := m.newChild(r, term)
	if err != nil {
		return fmt.Errorf("elector ctrl: unable to create the manager of %v: %w", r, err)
	}
	if err := m.setup(child, r); err != nil {
		// A programming error, not a transient one: stop the operator.
		err = fmt.Errorf("elector ctrl: unable to set up the controllers of %v: %w", r, err)
		fail(err)
		return err
	}
	m.log.Info("Starting the shard's controllers", "shard", r.Index, "token", int64(term.Token), "selector", r.Selector())
	done := make(chan error, 1)
	go func() { done <- child.Start(ctx) }()
	select {
	case err := <-done:
		// The manager ended by itself (a controller or cache failed):
		// everything of it has returned; the shard runs it again.
		if ctx.Err() == nil && err != nil {
			m.log.Info("The shard's controllers failed; restarting them", "shard", r.Index, "error", err)
		}
		return err
	case <-ctx.Done():
	}
	t := m.so.Clock.NewTimer(m.so.StopGrace)
	defer t.Stop()
	select {
	case err := <-done:
		m.log.Info("Stopped the shard's controllers", "shard", r.Index, "token", int64(term.Token))
		return err
	case <-t.C():
	}
	m.log.Error("The shard's controllers did not stop within StopGrace; exit the process", "shard", r.Index, "token", int64(term.Token), "stopGrace", m.so.StopGrace)
	fail(fmt.Errorf("elector ctrl: the controllers of %v did not stop within %v: %w", r, m.so.StopGrace, elector.ErrStopOverrun))
	return <-done
}

// newShardManager builds the manager of range r for a term.
func (m *ShardedManager) newShardManager(r Range, term elector.Term) (manager.Manager, error) {
	return manager.New(m.cfg, m.shardOptions(r, term))
}

// shardOptions derives the options of range r's manager from the
// embedded manager's.
func (m *ShardedManager) shardOptions(r Range, term elector.Term) manager.Options {
	o := m.opts
	base := o.BaseContext
	if base == nil {
		base = context.Background
	}
	o.BaseContext = func() context.Context { return withRange(withTerm(base(), term), r) }
	o.LeaderElection = false
	o.LeaderElectionResourceLockInterface = nil
	o.Metrics = metricsserver.Options{BindAddress: "0"}
	o.HealthProbeBindAddress = "0"
	o.PprofBindAddress = ""
	o.WebhookServer = nil
	o.ReadinessEndpointName, o.LivenessEndpointName = "", ""
	// Wait for every runnable: the shard is handed on when Start returns.
	o.GracefulShutdownTimeout = ptr.To(time.Duration(-1))
	o.Controller.SkipNameValidation = ptr.To(true)
	if o.Logger.GetSink() == nil {
		o.Logger = log.Log
	}
	o.Logger = o.Logger.WithValues("shard", r.Index)
	// Share the embedded manager's HTTP client and REST mapper: one
	// connection pool and one discovery cache for all the shards.
	if o.Cache.HTTPClient == nil {
		o.Cache.HTTPClient = m.GetHTTPClient()
	}
	if o.Client.HTTPClient == nil {
		o.Client.HTTPClient = m.GetHTTPClient()
	}
	mapper := m.GetRESTMapper()
	o.MapperProvider = func(*rest.Config, *http.Client) (meta.RESTMapper, error) { return mapper, nil }
	// cache.New clones these maps but fills in the Namespaces of a
	// ByObject entry in place: give each shard its own copies, since
	// shards start concurrently.
	o.Cache.DefaultNamespaces = maps.Clone(o.Cache.DefaultNamespaces)
	if o.Cache.ByObject != nil {
		byObject := make(map[client.Object]cache.ByObject, len(o.Cache.ByObject))
		for obj, bo := range o.Cache.ByObject {
			bo.Namespaces = maps.Clone(bo.Namespaces)
			byObject[obj] = bo
		}
		o.Cache.ByObject = byObject
	}
	newInformer := o.Cache.NewInformer
	if newInformer == nil {
		newInformer = toolscache.NewSharedIndexInformer
	}
	o.Cache.NewInformer = func(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, idx toolscache.Indexers) toolscache.SharedIndexInformer {
		return newInformer(newShardedListerWatcher(lw, obj, r, m), obj, resync, idx)
	}
	return o
}

// listed implements listObserver: it logs once per process that the API
// server did not apply the shard selector, and sets the fallback gauge.
func (m *ShardedManager) listed(kind string, sharded bool) {
	if sharded {
		return
	}
	m.metrics.fallback.Set(1)
	m.fallbackOnce.Do(func() {
		m.log.Info("The API server did not apply the shard selector; filtering on this side (every replica receives every object)",
			"type", kind, "key", string(m.so.Key),
			"fix", "enable the ShardedListAndWatch feature gate on kube-apiserver (Kubernetes 1.36+) to send each replica only its shards")
	})
}

// dropped implements listObserver.
func (m *ShardedManager) dropped(n int) {
	if n > 0 {
		m.metrics.filtered.Add(float64(n))
	}
}
