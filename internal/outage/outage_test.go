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

package outage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	testclock "k8s.io/utils/clock/testing"
)

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// lines returns "LEVEL msg k=v ..." for every record at or above min.
func (r *recorder) lines(min slog.Level) []string {
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

var gr = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("dial tcp 10.0.0.1:443: connect: connection refused"), true},
		{context.DeadlineExceeded, true},
		{apierrors.NewServiceUnavailable("etcd is down"), true},
		{apierrors.NewInternalError(errors.New("boom")), true},
		{apierrors.NewTooManyRequests("slow down", 1), true},
		{apierrors.NewTimeoutError("timeout", 1), true},
		{fmt.Errorf("unable to get Lease: %w", apierrors.NewServiceUnavailable("x")), true},
		{apierrors.NewConflict(gr, "web", errors.New("changed")), false},
		{apierrors.NewNotFound(gr, "web"), false},
		{apierrors.NewForbidden(gr, "web", errors.New("no")), false},
		{apierrors.NewResourceExpired("too old"), false},
	} {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestOutageIsOneWarningAndOneRecovery: N failed requests in a row are one
// warning (the first) and N-1 debug lines; the next answer, whatever it
// is, is one info line with the outage's length and its failed requests.
// A request cancelled by its caller counts neither way; one that timed
// out counts as failed.
func TestOutageIsOneWarningAndOneRecovery(t *testing.T) {
	rec := &recorder{}
	clk := testclock.NewFakeClock(time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC))
	tr := New(slog.New(rec), clk)
	ctx := context.Background()

	tr.Observe(ctx, "update leases/web", nil) // no outage: nothing to say
	const n = 5
	for i := range n {
		tr.Observe(ctx, "update leases/web", apierrors.NewServiceUnavailable(fmt.Sprintf("etcd is down %d", i)))
		clk.Step(time.Second)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	tr.Observe(cancelled, "get leases/web", context.Canceled)
	timedOut, cancel := context.WithTimeout(ctx, 0)
	defer cancel()
	tr.Observe(timedOut, "get leases/web", context.DeadlineExceeded)
	if !tr.Down() {
		t.Fatal("Down() = false during the outage")
	}
	tr.Observe(ctx, "update leases/web", apierrors.NewConflict(gr, "web", errors.New("changed")))
	tr.Observe(ctx, "update leases/web", nil)
	if tr.Down() {
		t.Fatal("Down() = true after an answer")
	}

	got := rec.lines(slog.LevelInfo)
	want := []string{
		"WARN API server unreachable; retrying request=update leases/web error=etcd is down 0",
		"INFO API server reachable again unreachableFor=5s failedRequests=6",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines at info and above:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if debug := len(rec.lines(slog.LevelDebug)) - len(got); debug != n {
		t.Fatalf("%d debug lines, want %d (one per failed request after the first)", debug, n)
	}

	// The next outage is reported again.
	tr.Observe(ctx, "watch leases", errors.New("connection refused"))
	if got := rec.lines(slog.LevelWarn); len(got) != 2 || !strings.Contains(got[1], "request=watch leases") {
		t.Fatalf("warnings after a second outage: %q, want a second one for the watch", got)
	}
}

// TestWrapTracksOnce: a client that reports to a Tracker already is not
// wrapped again, so that users sharing it report each request once.
func TestWrapTracksOnce(t *testing.T) {
	tr := New(slog.New(&recorder{}), testclock.NewFakeClock(time.Time{}))
	var c LeaseClient = &Leases{t: tr}
	if got := Wrap(c, New(slog.New(&recorder{}), testclock.NewFakeClock(time.Time{}))); got != c || TrackerOf(got) != tr {
		t.Fatal("Wrap wrapped a client that reports to a Tracker already")
	}
	if TrackerOf(nil) != nil {
		t.Fatal("TrackerOf(nil) != nil")
	}
	var nilTracker *Tracker
	nilTracker.Observe(context.Background(), "get leases/x", errors.New("x")) // must not panic
}
