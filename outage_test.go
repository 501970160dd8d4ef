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

package elector_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/testwait"
)

// logRecorder is a slog.Handler that keeps every record and signals each
// one whose message is signal.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
	signal  string
	ch      chan struct{}
}

func newLogRecorder(signal string) *logRecorder {
	return &logRecorder{signal: signal, ch: make(chan struct{}, 16)}
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.records = append(r.records, rec.Clone())
	r.mu.Unlock()
	if rec.Message == r.signal {
		select {
		case r.ch <- struct{}{}:
		default:
		}
	}
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// lines returns "LEVEL msg k=v ..." for every record at or above min.
func (r *logRecorder) lines(min slog.Level) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.records {
		if rec.Level < min {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
		rec.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		})
		out = append(out, b.String())
	}
	return out
}

// downLeases is a candidate's path to an API server that can go away:
// while down, every request fails with 503 (sent on failed, if set) and
// the open watches end.
type downLeases struct {
	elector.LeaseClient
	down    atomic.Bool
	failed  chan string
	mu      sync.Mutex
	watches []watch.Interface

	// opening counts watch requests sent while up and not yet answered
	// (the elector has not yet read from the watch, nor stopped it);
	// reading counts the watches being read. A test that steps the fake
	// clock while a request is unanswered may step past the elector's
	// request timeout (APITimeout, on the same fake clock) and make it
	// give the request up as "no answer": see settled.
	opening, reading atomic.Int32
}

// settled reports whether no watch request is waiting for its answer:
// stepping the fake clock now cannot time one out.
func (d *downLeases) settled() bool { return d.opening.Load() == 0 }

// trackedWatch is a watch of downLeases: the first read from it answers
// its request (opening to reading); Stop ends it.
type trackedWatch struct {
	watch.Interface
	d          *downLeases
	read, stop sync.Once
	wasRead    atomic.Bool
}

func (w *trackedWatch) ResultChan() <-chan watch.Event {
	w.read.Do(func() {
		w.wasRead.Store(true)
		w.d.reading.Add(1)
		w.d.opening.Add(-1)
	})
	return w.Interface.ResultChan()
}

func (w *trackedWatch) Stop() {
	w.stop.Do(func() {
		w.read.Do(func() { w.d.opening.Add(-1) }) // given up before it was read
		if w.wasRead.Load() {
			w.d.reading.Add(-1)
		}
	})
	w.Interface.Stop()
}

func (d *downLeases) fail(verb string) error {
	select {
	case d.failed <- verb:
	default:
	}
	return apierrors.NewServiceUnavailable("etcdserver: leader changed")
}

func (d *downLeases) Get(ctx context.Context, name string, o metav1.GetOptions) (*coordinationv1.Lease, error) {
	if d.down.Load() {
		return nil, d.fail("get")
	}
	return d.LeaseClient.Get(ctx, name, o)
}

func (d *downLeases) Create(ctx context.Context, l *coordinationv1.Lease, o metav1.CreateOptions) (*coordinationv1.Lease, error) {
	if d.down.Load() {
		return nil, d.fail("create")
	}
	return d.LeaseClient.Create(ctx, l, o)
}

func (d *downLeases) Update(ctx context.Context, l *coordinationv1.Lease, o metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	if d.down.Load() {
		return nil, d.fail("update")
	}
	return d.LeaseClient.Update(ctx, l, o)
}

func (d *downLeases) Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	if d.down.Load() {
		return nil, d.fail("watch")
	}
	d.opening.Add(1)
	wi, err := d.LeaseClient.Watch(ctx, o)
	if err != nil {
		d.opening.Add(-1)
		return nil, err
	}
	tw := &trackedWatch{Interface: wi, d: d}
	d.mu.Lock()
	d.watches = append(d.watches, tw)
	if d.down.Load() {
		tw.Stop() // opened while cut: cut may have missed it
	}
	d.mu.Unlock()
	return tw, nil
}

func (d *downLeases) cut() {
	d.down.Store(true)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, wi := range d.watches {
		wi.Stop()
	}
	d.watches = nil
}

const (
	msgUnreachable = "API server unreachable; retrying"
	msgReachable   = "API server reachable again"
)

// checkOneOutage checks that the lines at info level and above hold
// exactly one warning that the API server is unreachable, naming the
// error, then exactly one line that it is reachable again, counting at
// least failures failed requests, and no line per failed request.
func checkOneOutage(t *testing.T, rec *logRecorder, failures int) {
	t.Helper()
	var warns, recovered []string
	for _, l := range rec.lines(slog.LevelInfo) {
		switch {
		case strings.Contains(l, msgUnreachable):
			warns = append(warns, l)
		case strings.Contains(l, msgReachable):
			recovered = append(recovered, l)
		case strings.Contains(l, "retrying") || strings.Contains(l, "503") || strings.Contains(l, "leader changed"):
			t.Errorf("a line per failed request at info level or above: %s", l)
		}
	}
	all := strings.Join(rec.lines(slog.LevelInfo), "\n")
	if len(warns) != 1 || !strings.HasPrefix(warns[0], "WARN ") || !strings.Contains(warns[0], "etcdserver: leader changed") {
		t.Fatalf("warnings that the API server is unreachable: %q, want one at WARN naming the error; all lines:\n%s", warns, all)
	}
	if len(recovered) != 1 || !strings.HasPrefix(recovered[0], "INFO ") {
		t.Fatalf("lines that it is reachable again: %q, want one at INFO; all lines:\n%s", recovered, all)
	}
	var n int
	_, count, ok := strings.Cut(recovered[0], "failedRequests=")
	if _, err := fmt.Sscanf(count, "%d", &n); !ok || err != nil || n < failures {
		t.Fatalf("recovery line %q: want failedRequests >= %d", recovered[0], failures)
	}
	if !strings.Contains(recovered[0], "unreachableFor=") {
		t.Fatalf("recovery line %q: want how long the outage lasted", recovered[0])
	}
}

// TestLeaderLogsAnOutageOnceWhenItStartsAndOnceWhenItEnds: a leader whose
// renewals fail for a while (shorter than the stop point) logs one
// warning and, when a request is answered again, one info line — not one
// line per failed renewal or watch request — and keeps leading; Err says
// why meanwhile.
func TestLeaderLogsAnOutageOnceWhenItStartsAndOnceWhenItEnds(t *testing.T) {
	w := newWorld(t)
	rec := newLogRecorder(msgReachable)
	dl := &downLeases{LeaseClient: w.leases.Leases(ns), failed: make(chan string, 100)}
	a := w.start("a", func(c *elector.Config) {
		c.Leases = dl
		c.Logger = slog.New(rec)
	})
	wait(t, a.started, "a to lead")
	// The clock is stepped only while no watch request waits for its
	// answer: a step past APITimeout would time it out as "no answer", a
	// failure the test made, not the outage's (it did so under load: the
	// renewal loop below stepped 4s while the reopened watch's goroutine
	// waited for a CPU, and Err() named that failure after the outage).
	step := func(d time.Duration) {
		t.Helper()
		testwait.Until(t, "a's watch request to be answered", dl.settled)
		w.clock.Step(d)
	}
	dl.cut()
	// Renewals fail from the first one on (at RetryPeriod after the
	// acquisition, then every RetryPeriod/2 plus jitter), well within the
	// stop point (RenewDeadline - StopGrace after the acquisition).
	const renewals = 3
	step(elector.DefaultRetryPeriod)
	for i := 0; i < renewals; {
		if wait(t, dl.failed, "a failed request") == "update" {
			i++
			if i < renewals {
				step(elector.DefaultRetryPeriod / 2 * 6 / 5) // the retry, jitter included
			}
		}
	}
	if w.clock.Since(epoch) >= elector.DefaultRenewDeadline-elector.DefaultStopGrace {
		t.Fatalf("the test ran past the stop point: %v", w.clock.Since(epoch))
	}
	if err := a.e.Err(); err == nil || !strings.Contains(err.Error(), "etcdserver: leader changed") {
		t.Fatalf("Err() = %v during the outage, want the failed request's error", err)
	}
	dl.down.Store(false)
	recovered := false
	for limit := w.clock.Now().Add(2 * elector.DefaultRetryPeriod); !recovered; {
		if !w.clock.Now().Before(limit) {
			t.Fatalf("no line that the API server is reachable again within %v of the outage's end", 2*elector.DefaultRetryPeriod)
		}
		step(elector.DefaultRetryPeriod / 4)
		select {
		case <-rec.ch:
			recovered = true
		case <-time.After(20 * time.Millisecond):
		}
	}
	select {
	case <-a.cancelled:
		t.Fatal("a stepped down during an outage shorter than its stop point")
	default:
	}
	// Renewals go on, with nothing more to say.
	for range 3 {
		step(elector.DefaultRetryPeriod)
		w.updateBy("a")
	}
	// The watch failed during the outage and retried within a
	// RetryPeriod and its jitter: it is open again by now.
	testwait.Until(t, "a's watch to be open again", func() bool { return dl.settled() && dl.reading.Load() > 0 })
	if err := a.e.Err(); err != nil {
		t.Fatalf("Err() = %v after the outage, want nil", err)
	}
	checkOneOutage(t, rec, renewals)
	w.checkNoOverlap()
}

// TestFollowerLogsAnOutageOnceWhenItStartsAndOnceWhenItEnds: a follower
// whose watch fails for a while logs one warning and one info line, not
// one line per failed watch or read.
func TestFollowerLogsAnOutageOnceWhenItStartsAndOnceWhenItEnds(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	rec := newLogRecorder(msgReachable)
	dl := &downLeases{LeaseClient: w.leases.Leases(ns), failed: make(chan string, 100)}
	b := w.start("b", func(c *elector.Config) {
		c.Leases = dl
		c.Logger = slog.New(rec)
	})
	follows(t, b, "a")
	dl.cut()
	// The watch retries every RetryPeriod (plus jitter), on timers that
	// it arms after each failure: the clock is stepped until the next
	// failure. a renews meanwhile, well within b's view of its lease.
	const failures = 3
	wait(t, dl.failed, "b's failed watch")
	for range failures - 1 {
		stepUntil(t, w, elector.DefaultRetryPeriod/4, 2*elector.DefaultRetryPeriod, dl.failed, "b's failed watch or read")
	}
	if err := b.e.Err(); err == nil {
		t.Fatal("Err() = nil during b's outage, want the failed request's error")
	}
	dl.down.Store(false)
	stepUntil(t, w, elector.DefaultRetryPeriod/4, 2*elector.DefaultRetryPeriod, rec.ch, "the line that the API server is reachable again")
	checkOneOutage(t, rec, failures)
	w.checkNoOverlap()
}
