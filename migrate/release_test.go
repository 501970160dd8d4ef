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

package migrate_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	testclock "k8s.io/utils/clock/testing"

	"github.com/elector-dev/elector"
	leasefake "github.com/elector-dev/elector/fake"
	"github.com/elector-dev/elector/migrate"
)

// stuckObjects is an in-memory old-lock object whose release (a write of
// an empty holder) hangs, as a request to an API server that stopped
// answering does, until its context ends or the test unsticks it.
type stuckObjects struct {
	mu      sync.Mutex
	meta    *metav1.ObjectMeta
	rv      int
	unstick chan struct{}
	hanging chan struct{} // closed when a release write started to hang
	once    sync.Once
	// hangOn is what a write that hangs contains (default: an empty
	// holder, a release).
	hangOn string
}

var endpointsGR = schema.GroupResource{Resource: "endpoints"}

func (m *stuckObjects) Get(_ context.Context, _ migrate.Kind, _, name string) (*metav1.ObjectMeta, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.meta == nil {
		return nil, apierrors.NewNotFound(endpointsGR, name)
	}
	return m.meta.DeepCopy(), nil
}

func (m *stuckObjects) Create(_ context.Context, _ migrate.Kind, meta *metav1.ObjectMeta) (*metav1.ObjectMeta, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.meta != nil {
		return nil, apierrors.NewAlreadyExists(endpointsGR, meta.Name)
	}
	m.rv++
	m.meta = meta.DeepCopy()
	m.meta.ResourceVersion = strconv.Itoa(m.rv)
	return m.meta.DeepCopy(), nil
}

func (m *stuckObjects) SetAnnotation(ctx context.Context, _ migrate.Kind, meta *metav1.ObjectMeta, k, v string) (*metav1.ObjectMeta, error) {
	hangOn := m.hangOn
	if hangOn == "" {
		hangOn = `"holderIdentity":""`
	}
	if strings.Contains(v, hangOn) {
		m.once.Do(func() { close(m.hanging) })
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-m.unstick:
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.meta.ResourceVersion != meta.ResourceVersion {
		return nil, apierrors.NewConflict(endpointsGR, meta.Name, errors.New("modified"))
	}
	m.rv++
	m.meta.Annotations[k] = v
	m.meta.ResourceVersion = strconv.Itoa(m.rv)
	return m.meta.DeepCopy(), nil
}

func (m *stuckObjects) holder(t *testing.T) string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	var r oldRecord
	if err := json.Unmarshal([]byte(m.meta.Annotations[migrate.Annotation]), &r); err != nil {
		t.Fatal(err)
	}
	return r.HolderIdentity
}

// TestGuardEndsTheTenureBeforeReleasingTheOldLock: at shutdown the work
// stops at once, but the old lock's release hangs (the API server stopped
// answering). The tenure must end when the work returns: the release may
// not use up the StopGrace the Elector gives the work, which made Run
// report ErrStopOverrun (the sidecar's exit 7) for work that stopped on
// time. The release still happens, in the background, and Wait waits for
// it.
func TestGuardEndsTheTenureBeforeReleasingTheOldLock(t *testing.T) {
	clk := testclock.NewFakeClock(epoch)
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	objs := &stuckObjects{unstick: make(chan struct{}), hanging: make(chan struct{})}
	t.Cleanup(func() {
		select {
		case <-objs.unstick:
		default:
			close(objs.unstick)
		}
	})
	e, err := elector.New(elector.Config{
		Leases: leasefake.NewLeases().Leases("default"), Namespace: "default", Name: "elect", Identity: "new-0",
		Clock: clk, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	// An APITimeout far beyond the test: only unsticking ends the release.
	lock := &migrate.Lock{
		Client: objs, Kind: migrate.Endpoints, Namespace: "default", Name: "elect",
		Identity: "new-0", Clock: clk, Logger: log, APITimeout: time.Hour,
	}
	g := runGuarded(t, e, lock)
	started, workReturned, guardReturned, res, cancel := g.started, g.workReturned, g.guardReturned, g.res, g.cancel
	wait(t, started, "the guarded work to start")
	cancel() // shutdown: the Elector gives the work StopGrace
	wait(t, workReturned, "the work to return")
	wait(t, objs.hanging, "the old lock's release to start")
	select {
	case <-guardReturned:
	case <-time.After(guard):
		// Show what the Elector makes of it: at the renew deadline, an overrun.
		clk.Step(elector.DefaultRenewDeadline)
		t.Fatalf("Guard did not return while the old lock's release hung; Run = %v", wait(t, res, "Run to return"))
	}
	if err := wait(t, res, "Run to return"); err != nil {
		t.Fatalf("Run = %v, want nil: the work stopped on time", err)
	}
	if h := objs.holder(t); h != "new-0" {
		t.Fatalf("old lock holder = %q while the release hangs, want new-0", h)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer wcancel()
	if err := lock.Wait(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v while the release hangs, want its context's error", err)
	}
	close(objs.unstick)
	wctx, wcancel = context.WithTimeout(context.Background(), guard)
	defer wcancel()
	if err := lock.Wait(wctx); err != nil {
		t.Fatalf("Wait = %v after the release could proceed", err)
	}
	if h := objs.holder(t); h != "" {
		t.Fatalf("old lock holder = %q after the release, want empty", h)
	}
}

// TestGuardNoticesTheWorkReturnWhileARenewalHangs: the old lock's renewal
// hangs (the API server stopped answering; the request ends at APITimeout
// or Guard's stop point, seconds away) when the Elector stops the work,
// which returns at once. Guard must return when the work does: it renewed
// in its own loop, which noticed the return only after the renewal ended,
// after the Elector's renew deadline, so Run reported ErrStopOverrun for
// work that stopped on time (simulator seed 453457495386, class
// false-overrun). The renewal in flight is abandoned and the old lock is
// still released, in the background.
func TestGuardNoticesTheWorkReturnWhileARenewalHangs(t *testing.T) {
	clk := testclock.NewFakeClock(epoch)
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	objs := &stuckObjects{unstick: make(chan struct{}), hanging: make(chan struct{}), hangOn: `"holderIdentity":"new-0"`}
	t.Cleanup(func() {
		select {
		case <-objs.unstick:
		default:
			close(objs.unstick)
		}
	})
	e, err := elector.New(elector.Config{
		Leases: leasefake.NewLeases().Leases("default"), Namespace: "default", Name: "elect", Identity: "new-0",
		Clock: clk, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	// An APITimeout and a stop point far beyond the test: the renewal
	// ends only when Guard cancels it.
	lock := &migrate.Lock{
		Client: objs, Kind: migrate.Endpoints, Namespace: "default", Name: "elect",
		Identity: "new-0", Clock: clk, Logger: log, APITimeout: time.Hour,
		LeaseDuration: 3 * time.Hour, RenewDeadline: 2 * time.Hour,
	}
	g := runGuarded(t, e, lock)
	started, workReturned, guardReturned, res, cancel := g.started, g.workReturned, g.guardReturned, g.res, g.cancel
	wait(t, started, "the guarded work to start")
	// The old lock's first renewal is due a RetryPeriod after it was
	// taken; it hangs.
	deadline := time.After(guard)
	for hanging := false; !hanging; {
		clk.Step(elector.DefaultRetryPeriod / 4)
		select {
		case <-objs.hanging:
			hanging = true
		case <-deadline:
			t.Fatal("timed out waiting for the old lock's renewal")
		case <-time.After(20 * time.Millisecond): // real time for the loops to run
		}
	}
	cancel() // shutdown: the Elector gives the work StopGrace
	wait(t, workReturned, "the work to return")
	select {
	case <-guardReturned:
	case <-time.After(guard):
		close(objs.unstick)
		t.Fatal("Guard did not return while the old lock's renewal hung: at the Elector's renew deadline, Run reports ErrStopOverrun")
	}
	if err := wait(t, res, "Run to return"); err != nil {
		t.Fatalf("Run = %v, want nil: the work stopped on time", err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), guard)
	defer wcancel()
	if err := lock.Wait(wctx); err != nil {
		t.Fatalf("Wait = %v: the release did not end", err)
	}
	if h := objs.holder(t); h != "" {
		t.Fatalf("old lock holder = %q after the release, want empty", h)
	}
}

// guardedRun is an Elector's Run of work under a Lock's Guard that waits
// for its context to end; its channels close as the work starts and
// returns, and as Guard returns.
type guardedRun struct {
	started, workReturned, guardReturned chan struct{}
	res                                  chan error // Run's result
	cancel                               context.CancelFunc
}

// runGuarded starts e.Run with such work under lock.Guard; when the test
// ends it cancels Run and waits, boundedly, for it to return.
func runGuarded(t *testing.T, e *elector.Elector, lock *migrate.Lock) *guardedRun {
	t.Helper()
	g := &guardedRun{
		started: make(chan struct{}), workReturned: make(chan struct{}), guardReturned: make(chan struct{}),
		res: make(chan error, 1),
	}
	guarded := lock.Guard(func(ctx context.Context, _ elector.Term) error {
		close(g.started)
		<-ctx.Done()
		close(g.workReturned)
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		g.res <- e.Run(ctx, func(ctx context.Context, term elector.Term) error {
			err := guarded(ctx, term)
			close(g.guardReturned)
			return err
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-runDone:
		case <-time.After(guard):
			t.Error("Run did not return")
		}
	})
	return g
}
