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

package elector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/elector-dev/elector/internal/outage"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/clock"
)

// observation is what a watch tells an elector about its Lease: the Lease,
// or nil when it does not exist, or the error of a failed list or watch
// request (the watch retries by itself; the elector decides whether a
// denial ends its Run).
type observation struct {
	lease *coordinationv1.Lease
	err   error
}

// mailbox holds what a watch observed and its elector has not taken yet.
// Elections care about the newest state of their Lease, so a newer state
// replaces an older one not taken yet — but only a state of the same
// incarnation of the Lease (the same UID, or both absent). A Lease and
// its deletion (or its re-creation) are both kept, in order: a follower
// that took only "absent" would believe the Lease never existed and
// create it at once with token 0, over a holder it was told of (see
// Deleting the Lease in doc.go). An error never replaces a state either:
// it is kept beside the states, and a later state supersedes it (the
// watch works again). put never blocks the watch; the queue holds one
// entry per creation or deletion of the Lease since the last take.
type mailbox struct {
	mu     sync.Mutex
	states []observation // oldest first; err is nil in each
	err    error         // the last error after the last state
	ready  chan struct{}
}

func newMailbox() *mailbox { return &mailbox{ready: make(chan struct{}, 1)} }

func (m *mailbox) put(o observation) {
	m.mu.Lock()
	switch n := len(m.states); {
	case o.err != nil:
		m.err = o.err
	case n > 0 && sameIncarnation(m.states[n-1].lease, o.lease):
		m.states[n-1], m.err = o, nil
	default:
		m.states, m.err = append(m.states, o), nil
	}
	m.mu.Unlock()
	select {
	case m.ready <- struct{}{}:
	default:
	}
}

// take returns what was put since the last take, oldest first: the last
// state of each incarnation, then the last error if one came after them.
func (m *mailbox) take() []observation {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.states
	if m.err != nil {
		out = append(out, observation{err: m.err})
	}
	m.states, m.err = nil, nil
	return out
}

// sameIncarnation reports whether a and b are states of one Lease object:
// both absent, or both present with one UID.
func sameIncarnation(a, b *coordinationv1.Lease) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.UID == b.UID
}

// watchTimeout bounds one watch request; the server ends it after a
// randomized 5–10 minutes and the watch resumes from the last
// resourceVersion without a new GET or LIST (like client-go's reflector).
const minWatchTimeout = 5 * time.Minute

// watchSpec describes what one watch loop lists and watches.
type watchSpec struct {
	leases LeaseClient
	// name limits the watch to one Lease: the initial state comes from a
	// GET and the watch carries a field selector, which RBAC can restrict
	// with resourceNames (no list permission needed).
	name string
	// labelSelector limits a namespace watch (name empty) to the Leases
	// with these labels.
	labelSelector string
	clock         clock.Clock
	timeout       time.Duration // per GET/LIST request
	backoff       time.Duration // after a failed request
	// idle restarts a watch that delivered nothing — no event, no
	// bookmark — for this long (0: never); see watchIdleTimeout.
	idle time.Duration
	log  *slog.Logger

	// snapshot receives the full state after every (re)list: all Leases
	// that exist. event receives each change (lease nil = deleted, with
	// deletedName set). failed receives the error of every failed request;
	// the loop retries after backoff, denials (403, 401) included: whether
	// a denial is final is for the electors to judge.
	snapshot func(items []coordinationv1.Lease)
	event    func(l *coordinationv1.Lease, deletedName string)
	failed   func(error)
}

// run lists and watches until ctx ends.
func (s *watchSpec) run(ctx context.Context) {
	rv := ""
	needList := true
	for ctx.Err() == nil {
		if needList {
			var err error
			rv, err = s.list(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.failed(err)
				s.retrying("Lease read failed, retrying", err)
				s.sleep(ctx)
				continue
			}
		}
		var err error
		rv, needList, err = s.watchOnce(ctx, rv)
		if err != nil && ctx.Err() == nil {
			s.failed(err)
			s.retrying("Lease watch failed, retrying", err)
			s.sleep(ctx)
		}
	}
}

// retrying logs a failed list or watch request that is being retried: at
// debug level when the outage.Tracker of s.leases reports it (an outage:
// one line when it starts and one when it ends, whatever the number of
// retries; a denial: its electors log it), else at info level.
func (s *watchSpec) retrying(msg string, err error) {
	level := outage.Level(err)
	if isDenied(err) {
		level = slog.LevelDebug
	}
	s.log.Log(context.Background(), level, msg, "lease", s.name, "error", err) //nolint:sloglint // callers pass a fixed message
}

func (s *watchSpec) sleep(ctx context.Context) {
	t := s.clock.NewTimer(jitter(s.backoff))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C():
	}
}

func (s *watchSpec) list(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if s.name != "" {
		l, err := s.leases.Get(ctx, s.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			// An empty resourceVersion makes the watch start with the
			// current state, so a Lease created in between is not missed.
			s.snapshot(nil)
			return "", nil
		case err != nil:
			return "", fmt.Errorf("unable to get Lease: %w", err)
		}
		s.snapshot([]coordinationv1.Lease{*l})
		return l.ResourceVersion, nil
	}
	list, err := s.leases.List(ctx, metav1.ListOptions{LabelSelector: s.labelSelector})
	if err != nil {
		return "", fmt.Errorf("unable to list Leases: %w", err)
	}
	s.snapshot(list.Items)
	return list.ResourceVersion, nil
}

// watchOnce runs one watch request. It returns the last resourceVersion
// seen and whether the state must be read again (history expired).
func (s *watchSpec) watchOnce(ctx context.Context, rv string) (string, bool, error) {
	opts := metav1.ListOptions{
		ResourceVersion:     rv,
		AllowWatchBookmarks: true,
		TimeoutSeconds:      ptr(int64(jitter(minWatchTimeout).Seconds())),
	}
	if s.name != "" {
		opts.FieldSelector = fields.OneTermEqualSelector("metadata.name", s.name).String()
	} else {
		opts.LabelSelector = s.labelSelector
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w, err := s.open(wctx, cancel, opts)
	if err != nil {
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			return rv, true, nil
		}
		return rv, true, fmt.Errorf("unable to watch Leases: %w", err)
	}
	defer w.Stop()
	var idle clock.Timer
	if s.idle > 0 {
		idle = s.clock.NewTimer(s.idle)
		defer func() { idle.Stop() }()
	}
	for {
		select {
		case <-ctx.Done():
			return rv, false, nil
		case <-timerC(idle):
			// Neither an event nor a bookmark for longer than any live
			// holder renews or the API server bookmarks: the connection
			// may have died unnoticed. Resume from rv on a new watch.
			s.log.Info("Lease watch silent, restarting", "lease", s.name, "idle", s.idle.String())
			return rv, rv == "", nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				// The server ended the watch (timeout); resume from rv.
				return rv, rv == "", nil
			}
			if idle != nil {
				idle.Stop()
				idle = s.clock.NewTimer(s.idle) // events and bookmarks alike prove the watch alive
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				l, ok := ev.Object.(*coordinationv1.Lease)
				if !ok {
					continue
				}
				rv = l.ResourceVersion
				s.event(l, "")
			case watch.Deleted:
				l, ok := ev.Object.(*coordinationv1.Lease)
				if !ok {
					continue
				}
				rv = l.ResourceVersion
				s.event(nil, l.Name)
			case watch.Bookmark:
				if m, err := metaAccessor(ev.Object); err == nil {
					rv = m
				}
			case watch.Error:
				status := apierrors.FromObject(ev.Object)
				if apierrors.IsResourceExpired(status) || apierrors.IsGone(status) {
					return rv, true, nil
				}
				// An error the watch stream carries, not its request:
				// report it as a failed request of the outage.Tracker.
				outage.TrackerOf(s.leases).Observe(ctx, "watch leases", status)
				return rv, true, fmt.Errorf("unable to watch Leases: %w", status)
			}
		}
	}
}

// errNoAnswer ends a watch request that was not answered within the
// request timeout.
var errNoAnswer = errors.New("no answer")

// open sends the watch request on ctx, which cancel ends, and gives up on
// it (cancel) when it is not answered within the request timeout, as every
// other request is. The API server answers a watch at once (its headers;
// the events follow), so a request without an answer went to a connection
// that died unnoticed; waiting for it would leave the elector without a
// watch until the connection is found dead, if ever: blind to renewals, a
// follower would judge a live leader expired every lease (a GET and an
// update with a stale resourceVersion each time), and a crashed holder
// would be taken over a lease late.
func (s *watchSpec) open(ctx context.Context, cancel context.CancelCauseFunc, opts metav1.ListOptions) (watch.Interface, error) {
	t := s.clock.NewTimer(s.timeout)
	answered, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-t.C():
			cancel(errNoAnswer)
		case <-answered:
		}
	}()
	w, err := s.leases.Watch(ctx, opts)
	close(answered)
	<-done
	t.Stop()
	if errors.Is(context.Cause(ctx), errNoAnswer) {
		if w != nil && err == nil {
			w.Stop() // answered just too late
		}
		return nil, fmt.Errorf("%w within %v", errNoAnswer, s.timeout)
	}
	return w, err
}

func metaAccessor(obj any) (string, error) {
	if m, ok := obj.(metav1.Object); ok {
		return m.GetResourceVersion(), nil
	}
	return "", errors.New("object has no metadata")
}

// watchIdleTimeout is how long a watch may deliver nothing — no event, no
// bookmark — before it is restarted from its last resourceVersion. A live
// holder renews every RetryPeriod, and every renewal is an event, so a
// follower's watch is silent for two RetryPeriods only when the
// connection died unnoticed or the holder stopped renewing; restarting it
// then costs one watch request and keeps a follower's takeover after a
// holder's crash within its lease plus this timeout. It is at least a
// third of the lease, so that a holder renewing at a slower pace than ours
// (client-go's defaults renew every 2s of a 15s lease) does not make
// followers restart in steady state. The API server's bookmarks (asked
// for with allowWatchBookmarks, about once a minute) count as events.
func watchIdleTimeout(leaseDuration, retryPeriod time.Duration) time.Duration {
	return max(2*retryPeriod, leaseDuration/3)
}

// jitter returns d stretched by up to 20%, so that candidates that failed
// together do not retry together.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d)/5+1))
}

func ptr[T any](v T) *T { return &v }

// SharedWatch is one watch on all Leases of a namespace, shared by the
// electors of one process (for example a sharded controller with a
// thousand elections). It starts with its first elector and stops with its
// last. It needs list and watch on Leases in the namespace, which RBAC
// cannot restrict by name.
type SharedWatch struct {
	leases    LeaseClient
	namespace string
	opts      SharedWatchOptions

	// acquiring bounds the concurrent acquisition attempts of the electors
	// sharing this watch, so that a process starting a thousand elections
	// does not send a thousand creates at once and time them all out.
	// Renewals never wait for it.
	acquiring chan struct{}

	mu   sync.Mutex
	subs map[string]map[*mailbox]struct{}
	// gen numbers the watch loops: one starts with the first subscriber
	// and stops with the last. Callbacks of an older loop (still ending
	// while a new one starts) are ignored, so no state or error of an
	// earlier generation reaches a later subscriber.
	gen     uint64
	state   map[string]*coordinationv1.Lease
	synced  bool
	lastErr error // the last failed request's error, until a list succeeds
	refs    int
	cancel  context.CancelFunc
	stopped chan struct{}
}

// SharedWatchOptions tunes a SharedWatch; zero values mean defaults.
type SharedWatchOptions struct {
	Clock      clock.Clock
	Logger     *slog.Logger
	APITimeout time.Duration // default 2.5s (DefaultRenewDeadline/4)
	Backoff    time.Duration // default DefaultRetryPeriod
	// MaxConcurrentAcquires bounds the acquisition requests in flight
	// among the electors sharing the watch; default
	// DefaultMaxConcurrentAcquires.
	MaxConcurrentAcquires int
	// LabelSelector, when set, limits the watch to the Leases with these
	// labels (for example "elector.dev/shard-group=workers"); the
	// electors that share it must label their Leases (Config.Labels).
	// RBAC still needs list and watch on Leases in the namespace.
	LabelSelector string
	// IdleTimeout restarts the watch (from its last resourceVersion) when
	// it delivered neither an event nor a bookmark for this long, as over
	// a connection that died unnoticed. Default: two Backoff periods, at
	// least a third of DefaultLeaseDuration (5s with the defaults); set it
	// to at least twice the slowest renewal pace of the Leases watched.
	IdleTimeout time.Duration
}

// DefaultMaxConcurrentAcquires keeps a mass start (a thousand shards)
// within what one API server answers inside a request timeout, while a
// handful of elections never wait.
const DefaultMaxConcurrentAcquires = 32

// NewSharedWatch returns a SharedWatch of the Leases that leases reaches,
// in namespace (the namespace leases is bound to). Pass it as Config.Watch
// to every elector of that namespace.
func NewSharedWatch(leases LeaseClient, namespace string, opts SharedWatchOptions) *SharedWatch {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.APITimeout <= 0 {
		opts.APITimeout = DefaultRenewDeadline / 4
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultRetryPeriod
	}
	if opts.MaxConcurrentAcquires <= 0 {
		opts.MaxConcurrentAcquires = DefaultMaxConcurrentAcquires
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = watchIdleTimeout(DefaultLeaseDuration, opts.Backoff)
	}
	// One outage line pair for the watch and every elector sharing it
	// (see New), unless leases reports to a Tracker already.
	tracker := outage.New(opts.Logger.With("namespace", namespace), opts.Clock)
	return &SharedWatch{
		acquiring: make(chan struct{}, opts.MaxConcurrentAcquires),
		leases:    outage.Wrap(leases, tracker),
		namespace: namespace,
		opts:      opts,
		subs:      map[string]map[*mailbox]struct{}{},
		state:     map[string]*coordinationv1.Lease{},
	}
}

// subscribe delivers the state of Lease name to mb until the returned
// function is called. The last unsubscribe stops the watch and waits for
// it to end.
func (s *SharedWatch) subscribe(name string, mb *mailbox) func() {
	s.mu.Lock()
	s.refs++
	if s.refs == 1 {
		// A new generation: forget everything the last one knew.
		s.gen++
		gen := s.gen
		ctx, cancel := context.WithCancel(context.Background())
		s.cancel, s.stopped = cancel, make(chan struct{})
		s.synced, s.lastErr, s.state = false, nil, map[string]*coordinationv1.Lease{}
		spec := &watchSpec{
			leases: s.leases, labelSelector: s.opts.LabelSelector,
			clock: s.opts.Clock, timeout: s.opts.APITimeout,
			backoff: s.opts.Backoff, idle: s.opts.IdleTimeout, log: s.opts.Logger,
			snapshot: func(items []coordinationv1.Lease) { s.onSnapshot(gen, items) },
			event:    func(l *coordinationv1.Lease, deleted string) { s.onEvent(gen, l, deleted) },
			failed:   func(err error) { s.onFailed(gen, err) },
		}
		go func(done chan struct{}) {
			defer close(done)
			spec.run(ctx)
		}(s.stopped)
	}
	if s.subs[name] == nil {
		s.subs[name] = map[*mailbox]struct{}{}
	}
	s.subs[name][mb] = struct{}{}
	switch {
	case s.synced:
		mb.put(observation{lease: s.state[name]})
	case s.lastErr != nil:
		mb.put(observation{err: s.lastErr})
	}
	s.mu.Unlock()

	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.subs[name], mb)
			if len(s.subs[name]) == 0 {
				delete(s.subs, name)
			}
			s.refs--
			var stopped chan struct{}
			if s.refs == 0 {
				s.cancel()
				stopped = s.stopped
			}
			s.mu.Unlock()
			if stopped != nil {
				<-stopped
			}
		})
	}
}

func (s *SharedWatch) onSnapshot(gen uint64, items []coordinationv1.Lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		return
	}
	s.lastErr = nil
	s.state = make(map[string]*coordinationv1.Lease, len(items))
	for i := range items {
		s.state[items[i].Name] = &items[i]
	}
	s.synced = true
	for name, mbs := range s.subs {
		for mb := range mbs {
			mb.put(observation{lease: s.state[name]})
		}
	}
}

func (s *SharedWatch) onEvent(gen uint64, l *coordinationv1.Lease, deleted string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		return
	}
	name := deleted
	if l != nil {
		name = l.Name
		s.state[name] = l
	} else {
		delete(s.state, name)
	}
	for mb := range s.subs[name] {
		mb.put(observation{lease: l})
	}
	for mb := range s.subs[anyLease] {
		mb.put(observation{lease: l})
	}
}

// anyLease is the subscription key of Notify: no Lease has an empty name.
const anyLease = ""

// Notify starts the watch if it is not running and returns a channel that
// receives a value after the watch delivers anything — a listed state, a
// change of any Lease, a failed request — coalesced: one value may stand
// for several changes, so read Snapshot after each. stop ends the
// notifications; the watch stops with its last user. It is for code that
// builds on the Leases of many elections, such as package shard.
func (s *SharedWatch) Notify() (changed <-chan struct{}, stop func()) {
	mb := newMailbox()
	return mb.ready, s.subscribe(anyLease, mb)
}

// Snapshot returns the Leases the watch knows, by name, and whether it has
// listed them since it started. The map is a copy; the Leases are shared
// and must not be modified.
func (s *SharedWatch) Snapshot() (leases map[string]*coordinationv1.Lease, synced bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]*coordinationv1.Lease, len(s.state))
	for k, v := range s.state {
		m[k] = v
	}
	return m, s.synced
}

// Err returns the error of the watch's last failed request, until a list
// succeeds again; nil when it works.
func (s *SharedWatch) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

func (s *SharedWatch) onFailed(gen uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		return
	}
	s.lastErr = err
	for _, mbs := range s.subs {
		for mb := range mbs {
			mb.put(observation{err: err})
		}
	}
}

// watchOwn starts a watch of the elector's own Lease that feeds mb and
// returns a function that stops it and waits for it to end.
func watchOwn(leases LeaseClient, name string, cfg *Config, mb *mailbox) func() {
	ctx, cancel := context.WithCancel(context.Background())
	spec := &watchSpec{
		leases: leases, name: name, clock: cfg.Clock, timeout: cfg.APITimeout,
		backoff: cfg.RetryPeriod, idle: watchIdleTimeout(cfg.LeaseDuration, cfg.RetryPeriod), log: cfg.Logger,
		snapshot: func(items []coordinationv1.Lease) {
			if len(items) == 0 {
				mb.put(observation{})
				return
			}
			mb.put(observation{lease: &items[0]})
		},
		event:  func(l *coordinationv1.Lease, _ string) { mb.put(observation{lease: l}) },
		failed: func(err error) { mb.put(observation{err: err}) },
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		spec.run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// acquireSlot waits for a free acquisition slot; release returns it. A
// nil *SharedWatch never waits.
func (s *SharedWatch) acquireSlot(ctx context.Context) (release func(), err error) {
	if s == nil {
		return func() {}, nil
	}
	select {
	case s.acquiring <- struct{}{}:
		return func() { <-s.acquiring }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
