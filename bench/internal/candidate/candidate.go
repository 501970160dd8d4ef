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

// Package candidate runs one election candidate in-process with either
// elector or client-go's tools/leaderelection behind one small interface,
// so that every scenario drives both the same way.
package candidate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/elector-dev/elector"
)

// Impl names an implementation.
type Impl string

// The implementations compared.
const (
	Elector  Impl = "elector"
	ClientGo Impl = "client-go"
)

// Timing is lease duration / renew deadline / retry period.
type Timing struct {
	Lease, Renew, Retry time.Duration
}

func (t Timing) String() string {
	return fmt.Sprintf("%v / %v / %v", t.Lease, t.Renew, t.Retry)
}

// Common is client-go's most common setting (and elector's default):
// 15s / 10s / 2s.
var Common = Timing{Lease: 15 * time.Second, Renew: 10 * time.Second, Retry: 2 * time.Second}

// Options describe one candidate.
type Options struct {
	Impl      Impl
	Namespace string
	Name      string // Lease name
	Identity  string
	Timing    Timing
	// Client reaches the Lease API. For client-go it should have a request
	// timeout (rest.Config.Timeout), as leaderelection.NewFromKubeconfig
	// sets: see RESTConfig.
	Client coordinationv1client.LeasesGetter
	// Watch is a shared watch for elector candidates; nil means each has
	// its own watch of its Lease.
	Watch *elector.SharedWatch
	// Logger receives elector's logs; nil discards them.
	Logger *slog.Logger
	// OnStarted is called when the leader work starts: elector's leader
	// function, client-go's OnStartedLeading. It must not block.
	OnStarted func(at time.Time)
}

// Candidate is one running candidate.
type Candidate struct {
	opts   Options
	cancel context.CancelFunc
	done   chan struct{}

	el *elector.Elector
	le *leaderelection.LeaderElector

	mu      sync.Mutex
	leading bool
}

// Quiet silences klog (client-go's leaderelection logs every acquisition)
// for the whole process.
func Quiet() {
	klog.SetLogger(logr.Discard())
}

// discard is elector's logger in the benchmark.
var discard = slog.New(slog.DiscardHandler)

// RESTConfig returns a copy of cfg set up as the implementations' usual
// clients: client-go's request timeout is max(RenewDeadline/2, 1s), as in
// leaderelection.NewFromKubeconfig (elector bounds its requests itself);
// qps < 0 disables client-side rate limiting (for many elections on one
// client), 0 keeps client-go's default of 5/s.
func RESTConfig(cfg *rest.Config, impl Impl, t Timing, qps float32) *rest.Config {
	c := rest.CopyConfig(cfg)
	if impl == ClientGo {
		c.Timeout = max(t.Renew/2, time.Second)
	}
	if qps != 0 {
		c.QPS, c.Burst = qps, 0
	}
	return c
}

// Start starts a candidate that campaigns until Stop. Like both sidecars,
// it campaigns again after a tenure ends.
func Start(opts Options) (*Candidate, error) {
	if opts.OnStarted == nil {
		opts.OnStarted = func(time.Time) {}
	}
	if opts.Logger == nil {
		opts.Logger = discard
	}
	c := &Candidate{opts: opts, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	var loop func(context.Context)
	switch opts.Impl {
	case Elector:
		el, err := elector.New(elector.Config{
			Leases:        opts.Client.Leases(opts.Namespace),
			Namespace:     opts.Namespace,
			Name:          opts.Name,
			Identity:      opts.Identity,
			LeaseDuration: opts.Timing.Lease,
			RenewDeadline: opts.Timing.Renew,
			RetryPeriod:   opts.Timing.Retry,
			Watch:         opts.Watch,
			Logger:        opts.Logger,
		})
		if err != nil {
			cancel()
			return nil, err
		}
		c.el = el
		loop = c.runElector
	case ClientGo:
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: &resourcelock.LeaseLock{
				LeaseMeta:  metav1.ObjectMeta{Namespace: opts.Namespace, Name: opts.Name},
				Client:     opts.Client,
				LockConfig: resourcelock.ResourceLockConfig{Identity: opts.Identity},
			},
			LeaseDuration:   opts.Timing.Lease,
			RenewDeadline:   opts.Timing.Renew,
			RetryPeriod:     opts.Timing.Retry,
			ReleaseOnCancel: true,
			Name:            opts.Identity,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					c.setLeading(true)
					opts.OnStarted(time.Now())
					<-ctx.Done()
					c.setLeading(false)
				},
				OnStoppedLeading: func() {},
			},
		})
		if err != nil {
			cancel()
			return nil, err
		}
		c.le = le
		loop = c.runClientGo
	default:
		cancel()
		return nil, fmt.Errorf("unknown implementation %q", opts.Impl)
	}
	go func() {
		defer close(c.done)
		loop(ctx)
	}()
	return c, nil
}

func (c *Candidate) runElector(ctx context.Context) {
	for ctx.Err() == nil {
		err := c.el.Run(ctx, func(ctx context.Context, _ elector.Term) error {
			c.setLeading(true)
			c.opts.OnStarted(time.Now())
			<-ctx.Done()
			c.setLeading(false)
			return nil
		})
		if err != nil && ctx.Err() == nil {
			pause(ctx, c.opts.Timing.Retry)
		}
	}
}

func (c *Candidate) runClientGo(ctx context.Context) {
	for ctx.Err() == nil {
		c.le.Run(ctx)
	}
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (c *Candidate) setLeading(v bool) {
	c.mu.Lock()
	c.leading = v
	c.mu.Unlock()
}

// Identity is the candidate's identity.
func (c *Candidate) Identity() string { return c.opts.Identity }

// Leading reports whether the leader work runs.
func (c *Candidate) Leading() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leading
}

// KnownLeader is the holder this candidate last observed; "" when none
// or not read yet.
func (c *Candidate) KnownLeader() string {
	if c.el != nil {
		if !c.el.Synced() {
			return ""
		}
		return c.el.Leader().Identity
	}
	return c.le.GetLeader()
}

// Stop cancels the candidate (the leader releases the Lease, as both are
// configured to) and returns without waiting; Done is closed when it has
// returned.
func (c *Candidate) Stop() { c.cancel() }

// Done is closed when the candidate has stopped.
func (c *Candidate) Done() <-chan struct{} { return c.done }

// StopWait stops the candidate and waits up to timeout for it to return.
func (c *Candidate) StopWait(timeout time.Duration) error {
	c.cancel()
	select {
	case <-c.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("candidate %s (%s) did not stop within %v", c.opts.Identity, c.opts.Impl, timeout)
	}
}

// Freezer is an http.RoundTripper wrapper that, once frozen, lets no new
// request reach the server: to the API server the candidate has crashed.
// Requests already in flight complete.
type Freezer struct {
	mu     sync.Mutex
	frozen chan struct{} // closed when frozen
	next   http.RoundTripper
}

// NewFreezer returns a Freezer; install it with Wrap.
func NewFreezer() *Freezer { return &Freezer{frozen: make(chan struct{})} }

// Wrap is a rest.Config.WrapTransport function.
func (f *Freezer) Wrap(rt http.RoundTripper) http.RoundTripper {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next = rt
	return f
}

// Freeze stops all further requests.
func (f *Freezer) Freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.frozen:
	default:
		close(f.frozen)
	}
}

var errFrozen = errors.New("candidate frozen (simulated crash)")

// RoundTrip implements http.RoundTripper.
func (f *Freezer) RoundTrip(r *http.Request) (*http.Response, error) {
	select {
	case <-f.frozen:
		<-r.Context().Done()
		return nil, errFrozen
	default:
	}
	f.mu.Lock()
	next := f.next
	f.mu.Unlock()
	return next.RoundTrip(r)
}
