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

// Package outage turns the outcomes of requests to the API server into
// one warning when requests start failing (connection refused, timeouts,
// 5xx, 429) and one info line when one is answered again, with how long
// the outage lasted and how many requests failed meanwhile; each failed
// request in between is logged at debug level only. A long outage of a
// process with many elections thus costs two lines, not one per retry.
package outage

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/clock"
)

// Tracker follows whether the API server answers. Its methods are safe
// for concurrent use; a nil *Tracker ignores everything.
type Tracker struct {
	log *slog.Logger
	clk clock.PassiveClock

	mu       sync.Mutex
	since    time.Time // when the first request of the outage failed; zero: none
	failures int       // requests failed since then
}

// New returns a Tracker that logs to log and measures outages on clk.
func New(log *slog.Logger, clk clock.PassiveClock) *Tracker {
	return &Tracker{log: log, clk: clk}
}

// Transient reports whether err means that the API server was not reached
// or could not serve the request: no answer at all (connection refused, a
// timeout), or an answer of 5xx or 429. Any other answer (409, 404, 403,
// ...) proves it reachable.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		code := st.Status().Code
		return code >= http.StatusInternalServerError || code == http.StatusTooManyRequests
	}
	return true
}

// Observe records the outcome of one request, described as "VERB
// RESOURCE[/NAME]" (for example "update leases/web"), sent on ctx. A
// request that failed because ctx was cancelled by its caller (shutdown)
// says nothing about the API server and is ignored; one that ran out of
// time counts as failed.
func (t *Tracker) Observe(ctx context.Context, request string, err error) {
	switch {
	case t == nil:
	case err == nil || !Transient(err):
		t.OK()
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled):
	default:
		t.Failed(request, err)
	}
}

// Failed records a failed request: the first of an outage is logged at
// warning level, the others at debug level.
func (t *Tracker) Failed(request string, err error) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failures++
	if t.failures == 1 {
		t.since = t.clk.Now()
		t.log.Warn("API server unreachable; retrying", "request", request, "error", err)
		return
	}
	t.log.Debug("API server still unreachable", "request", request, "error", err, "failedRequests", t.failures)
}

// OK records an answered request: it ends the outage, if any, with one
// info line.
func (t *Tracker) OK() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failures == 0 {
		return
	}
	t.log.Info("API server reachable again",
		"unreachableFor", t.clk.Since(t.since).Round(time.Millisecond).String(), "failedRequests", t.failures)
	t.since, t.failures = time.Time{}, 0
}

// Down reports whether requests are failing now.
func (t *Tracker) Down() bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failures > 0
}

// LeaseClient is the Lease client of package elector (elector.LeaseClient),
// repeated here so that this package does not import it.
type LeaseClient interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error)
	Create(ctx context.Context, lease *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error)
	Update(ctx context.Context, lease *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error)
	List(ctx context.Context, opts metav1.ListOptions) (*coordinationv1.LeaseList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// Leases is a LeaseClient that reports the outcome of every request to a
// Tracker. It changes nothing else: requests and answers pass unchanged.
type Leases struct {
	c LeaseClient
	t *Tracker
}

// Wrap returns c reporting to t, or c itself when it reports to a Tracker
// already (so that a client shared by several users is tracked once).
func Wrap(c LeaseClient, t *Tracker) LeaseClient {
	if l, ok := c.(*Leases); ok {
		return l
	}
	return &Leases{c: c, t: t}
}

// TrackerOf returns the Tracker c reports to, or nil.
func TrackerOf(c LeaseClient) *Tracker {
	if l, ok := c.(*Leases); ok {
		return l.t
	}
	return nil
}

// Get implements LeaseClient.
func (l *Leases) Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error) {
	got, err := l.c.Get(ctx, name, opts)
	l.t.Observe(ctx, "get leases/"+name, err)
	return got, err
}

// Create implements LeaseClient.
func (l *Leases) Create(ctx context.Context, lease *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error) {
	got, err := l.c.Create(ctx, lease, opts)
	l.t.Observe(ctx, "create leases/"+lease.Name, err)
	return got, err
}

// Update implements LeaseClient.
func (l *Leases) Update(ctx context.Context, lease *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	got, err := l.c.Update(ctx, lease, opts)
	l.t.Observe(ctx, "update leases/"+lease.Name, err)
	return got, err
}

// List implements LeaseClient.
func (l *Leases) List(ctx context.Context, opts metav1.ListOptions) (*coordinationv1.LeaseList, error) {
	got, err := l.c.List(ctx, opts)
	l.t.Observe(ctx, "list leases", err)
	return got, err
}

// Watch implements LeaseClient.
func (l *Leases) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	got, err := l.c.Watch(ctx, opts)
	l.t.Observe(ctx, "watch leases", err)
	return got, err
}

// Level is the level for a caller's own line about a failed request: debug
// when the Tracker reports it (a transient failure), info otherwise.
func Level(err error) slog.Level {
	if Transient(err) {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}
