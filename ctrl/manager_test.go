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
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/fake"
	"github.com/elector-dev/elector/internal/testwait"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testNS    = "team-a"
	testLease = "my-operator"
	testID    = "me"
)

// unreachable is a rest.Config that no test contacts: the managers
// here start no informer, and the Lease requests go to a fake.
var unreachable = &rest.Config{Host: "https://127.0.0.1:1"}

func testOptions() manager.Options {
	return manager.Options{
		LeaderElection:                true,
		LeaderElectionID:              testLease,
		LeaderElectionNamespace:       testNS,
		LeaderElectionReleaseOnCancel: true,
		Metrics:                       metricsserver.Options{BindAddress: "0"},
	}
}

// newTestManager returns a manager whose elector uses leases and a fake
// clock that never advances: a Lease held by someone else never expires.
func newTestManager(t *testing.T, leases *fake.Leases, opts manager.Options) *Manager {
	t.Helper()
	mgr, err := NewManager(unreachable, opts, WithConfig(func(c *elector.Config) {
		c.Leases = leases.Leases(testNS)
		c.Identity = testID
		c.Clock = clocktesting.NewFakeClock(time.Now())
		c.Registerer = nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return mgr.(*Manager)
}

// started is a runnable that reports its start and waits for its context.
type started struct {
	needLeader bool
	ch         chan context.Context
	onStop     func() // called after ctx ends, before Start returns
}

func newStarted(needLeader bool) *started {
	return &started{needLeader: needLeader, ch: make(chan context.Context, 1)}
}

func (s *started) NeedLeaderElection() bool { return s.needLeader }

func (s *started) Start(ctx context.Context) error {
	s.ch <- ctx
	<-ctx.Done()
	if s.onStop != nil {
		s.onStop()
	}
	return nil
}

// startManager runs mgr.Start in the background; the returned channel
// yields its result.
func startManager(t *testing.T, mgr manager.Manager) (context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- mgr.Start(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		testwait.Recv(t, finished, "Start to return after its context ended")
	})
	return cancel, done
}

// watching waits until the elector's watch of the Lease is open. A
// change made before that is seen only at the next renewal, which the
// fake clock never reaches: the watch's first read may come after a
// deletion, and a watch from "" then has nothing to report.
func watching(t *testing.T, leases *fake.Leases) {
	t.Helper()
	testwait.Until(t, "the elector's watch of the Lease to open", func() bool { return leases.Watchers() > 0 })
}

func holdLease(t *testing.T, leases *fake.Leases, holder string) {
	t.Helper()
	_, err := leases.Leases(testNS).Create(t.Context(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: testLease, Namespace: testNS},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(holder),
			LeaseDurationSeconds: ptr.To(int32(15)),
			AcquireTime:          &metav1.MicroTime{Time: time.Now()},
			RenewTime:            &metav1.MicroTime{Time: time.Now()},
			LeaseTransitions:     ptr.To(int32(6)),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func releaseLease(t *testing.T, leases *fake.Leases) {
	t.Helper()
	l, err := leases.Leases(testNS).Get(t.Context(), testLease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l.Spec.HolderIdentity = ptr.To("")
	if _, err := leases.Leases(testNS).Update(t.Context(), l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func holder(t *testing.T, leases *fake.Leases) string {
	t.Helper()
	l, err := leases.Leases(testNS).Get(context.Background(), testLease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

func TestLeaderOnlyRunnablesWaitForTheTerm(t *testing.T) {
	leases := fake.NewLeases()
	holdLease(t, leases, "other")
	mgr := newTestManager(t, leases, testOptions())
	leader, everywhere := newStarted(true), newStarted(false)
	plain := make(chan context.Context, 1)
	for _, r := range []manager.Runnable{leader, everywhere, manager.RunnableFunc(func(ctx context.Context) error {
		plain <- ctx
		<-ctx.Done()
		return nil
	})} {
		if err := mgr.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	var stillHeld bool
	leader.onStop = func() { stillHeld = holder(t, leases) == testID }
	cancel, done := startManager(t, mgr)

	// A runnable that needs no election starts while another replica
	// leads; the others wait.
	if _, ok := TermFrom(testwait.Recv(t, everywhere.ch, "the runnable that needs no election to start")); ok {
		t.Error("a runnable that needs no election has a term in its context")
	}
	select {
	case <-leader.ch:
		t.Fatal("a leader-only runnable started while another replica leads")
	case <-plain:
		t.Fatal("a plain Runnable (leader-only by controller-runtime's rule) started while another replica leads")
	case <-mgr.Elected():
		t.Fatal("Elected closed while another replica leads")
	default:
	}

	releaseLease(t, leases)
	testwait.Recv(t, mgr.Elected(), "this replica to lead once the Lease was released")
	for _, ch := range []chan context.Context{leader.ch, plain} {
		term, ok := TermFrom(testwait.Recv(t, ch, "a leader-only runnable to start"))
		if !ok || term.Identity != testID || term.Token != 7 {
			t.Errorf("TermFrom = %+v, %v; want identity %q and token 7", term, ok, testID)
		}
	}

	cancel()
	if err := testwait.Recv(t, done, "Start to return"); err != nil {
		t.Fatalf("Start = %v, want nil after the context ended", err)
	}
	if !stillHeld {
		t.Error("the Lease was released before the leader-only runnable returned")
	}
	if h := holder(t, leases); h != "" {
		t.Errorf("holder after shutdown = %q, want released (LeaderElectionReleaseOnCancel)", h)
	}
}

func TestKeepLeaseWithoutReleaseOnCancel(t *testing.T) {
	leases := fake.NewLeases()
	opts := testOptions()
	opts.LeaderElectionReleaseOnCancel = false
	mgr := newTestManager(t, leases, opts)
	cancel, done := startManager(t, mgr)
	testwait.Recv(t, mgr.Elected(), "this replica to lead")
	cancel()
	if err := testwait.Recv(t, done, "Start to return"); err != nil {
		t.Fatal(err)
	}
	if h := holder(t, leases); h != testID {
		t.Errorf("holder after shutdown = %q, want %q kept (LeaderElectionReleaseOnCancel is false)", h, testID)
	}
}

// Without LeaderElectionReleaseOnCancel (controller-runtime's default) the
// next leader waits for the Lease to expire: NewManager says so once.
func TestReleaseOnCancelOffIsLogged(t *testing.T) {
	for _, release := range []bool{false, true} {
		var logs bytes.Buffer
		opts := testOptions()
		opts.LeaderElectionReleaseOnCancel = release
		if _, err := NewManager(unreachable, opts, WithConfig(func(c *elector.Config) {
			c.Leases = fake.NewLeases().Leases(testNS)
			c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			c.Registerer = nil
		})); err != nil {
			t.Fatal(err)
		}
		logged := strings.Contains(logs.String(), `msg="LeaderElectionReleaseOnCancel is off: at shutdown the Lease is kept and the next leader waits for it to expire" lease=team-a/my-operator leaseDuration=15s fix="set LeaderElectionReleaseOnCancel: true`)
		if logged == release {
			t.Errorf("LeaderElectionReleaseOnCancel %v: logged the hint = %v, want %v; log:\n%s", release, logged, !release, logs.String())
		}
	}
}

func TestLostLeaseEndsStart(t *testing.T) {
	leases := fake.NewLeases()
	mgr := newTestManager(t, leases, testOptions())
	leader := newStarted(true)
	if err := mgr.Add(leader); err != nil {
		t.Fatal(err)
	}
	_, done := startManager(t, mgr)
	ctx := testwait.Recv(t, leader.ch, "the leader-only runnable to start")
	watching(t, leases)
	if err := leases.Leases(testNS).Delete(t.Context(), testLease, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testwait.Done(t, ctx, "the runnable's context to end after the Lease was deleted")
	err := testwait.Recv(t, done, "Start to return")
	if !errors.Is(err, elector.ErrLeadershipLost) {
		t.Fatalf("Start = %v, want an error wrapping elector.ErrLeadershipLost", err)
	}
	if err := mgr.Add(newStarted(true)); !errors.Is(err, errTermEnded) {
		t.Errorf("Add after the term = %v, want %v", err, errTermEnded)
	}
}

func TestFailedRunnableEndsTheTerm(t *testing.T) {
	leases := fake.NewLeases()
	mgr := newTestManager(t, leases, testOptions())
	other := newStarted(true)
	boom := errors.New("boom")
	var heldAtStop bool
	other.onStop = func() { heldAtStop = holder(t, leases) == testID }
	failing := manager.RunnableFunc(func(ctx context.Context) error { return boom })
	for _, r := range []manager.Runnable{other, failing} {
		if err := mgr.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	_, done := startManager(t, mgr)
	err := testwait.Recv(t, done, "Start to return")
	if !errors.Is(err, boom) {
		t.Fatalf("Start = %v, want the runnable's error", err)
	}
	if !heldAtStop {
		t.Error("the Lease was released before every leader-only runnable returned")
	}
	if h := holder(t, leases); h != "" {
		t.Errorf("holder = %q, want released", h)
	}
}

func TestPlannedHandoffEndsStart(t *testing.T) {
	leases := fake.NewLeases()
	mgr := newTestManager(t, leases, testOptions())
	leader := newStarted(true)
	var heldAtStop bool
	leader.onStop = func() { heldAtStop = holder(t, leases) == testID }
	if err := mgr.Add(leader); err != nil {
		t.Fatal(err)
	}
	_, done := startManager(t, mgr)
	ctx := testwait.Recv(t, leader.ch, "the leader-only runnable to start")
	if _, err := elector.RequestHandoff(t.Context(), leases.Leases(testNS), testLease, "next"); err != nil {
		t.Fatal(err)
	}
	testwait.Done(t, ctx, "the runnable's context to end after the handoff request")
	if cause := context.Cause(ctx); !errors.Is(cause, elector.ErrHandedOff) {
		t.Errorf("the runnable's context ended with %v, want elector.ErrHandedOff", cause)
	}
	if err := testwait.Recv(t, done, "Start to return"); !errors.Is(err, elector.ErrHandedOff) {
		t.Fatalf("Start = %v, want an error wrapping elector.ErrHandedOff", err)
	}
	if !heldAtStop {
		t.Error("the Lease was handed on before the leader-only runnable returned")
	}
	if h := holder(t, leases); h != "next" {
		t.Errorf("holder = %q, want the handoff's target", h)
	}
}

func TestAddWhileLeadingStartsAtOnce(t *testing.T) {
	leases := fake.NewLeases()
	mgr := newTestManager(t, leases, testOptions())
	cancel, done := startManager(t, mgr)
	testwait.Recv(t, mgr.Elected(), "this replica to lead")
	late := newStarted(true)
	if err := mgr.Add(late); err != nil {
		t.Fatal(err)
	}
	if _, ok := TermFrom(testwait.Recv(t, late.ch, "the late runnable to start")); !ok {
		t.Error("a runnable added while leading has no term")
	}
	cancel()
	if err := testwait.Recv(t, done, "Start to return"); err != nil {
		t.Fatal(err)
	}
}

// warming is a leader-only runnable with a Warmup, like a controller with
// EnableWarmup.
type warming struct {
	*started
	warm chan struct{}
}

func (w *warming) Warmup(context.Context) error {
	close(w.warm)
	return nil
}

func TestWarmupRunsBeforeLeading(t *testing.T) {
	leases := fake.NewLeases()
	holdLease(t, leases, "other")
	mgr := newTestManager(t, leases, testOptions())
	w := &warming{started: newStarted(true), warm: make(chan struct{})}
	if err := mgr.Add(w); err != nil {
		t.Fatal(err)
	}
	startManager(t, mgr)
	testwait.Recv(t, w.warm, "the warm-up to run")
	select {
	case <-w.ch:
		t.Fatal("the runnable started while another replica leads")
	default:
	}
}

// queued is a leader-only runnable that behaves like a controller with
// EnableWarmup: its workers read a queue that shuts down when the Warmup
// context ends, not when Start's does.
type queued struct {
	warmCtx chan context.Context
	started chan struct{}
}

func (q *queued) Warmup(ctx context.Context) error {
	q.warmCtx <- ctx
	return nil
}

func (q *queued) Start(ctx context.Context) error {
	close(q.started)
	warm := <-q.warmCtx
	<-ctx.Done()
	<-warm.Done() // the workers stop when the queue shuts down
	return nil
}

func TestWarmupContextEndsWithTheTerm(t *testing.T) {
	leases := fake.NewLeases()
	mgr := newTestManager(t, leases, testOptions())
	q := &queued{warmCtx: make(chan context.Context, 1), started: make(chan struct{})}
	if err := mgr.Add(q); err != nil {
		t.Fatal(err)
	}
	_, done := startManager(t, mgr)
	testwait.Recv(t, q.started, "the runnable to start")
	watching(t, leases)
	if err := leases.Leases(testNS).Delete(t.Context(), testLease, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Without the warm-up context ending with the term, the runnable
	// would not return and Start would hang (until the renew deadline,
	// which the fake clock never reaches).
	if err := testwait.Recv(t, done, "Start to return"); !errors.Is(err, elector.ErrLeadershipLost) {
		t.Fatalf("Start = %v, want an error wrapping elector.ErrLeadershipLost", err)
	}
}

func TestNeedsLeaderFollowsControllerRuntime(t *testing.T) {
	srv := webhook.NewServer(webhook.Options{})
	for _, tc := range []struct {
		name string
		r    manager.Runnable
		want bool
	}{
		{"plain Runnable", manager.RunnableFunc(func(context.Context) error { return nil }), true},
		{"NeedLeaderElection true", newStarted(true), true},
		{"NeedLeaderElection false", newStarted(false), false},
		{"webhook server", srv, false},
		{"server", &manager.Server{}, false},
		{"server only when leader", &manager.Server{OnlyServeWhenLeader: true}, true},
		{"warm-up only", &warming{started: newStarted(true)}, true},
	} {
		if got := needsLeader(tc.r); got != tc.want {
			t.Errorf("%s: needsLeader = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNamespaceFromPod(t *testing.T) {
	file := filepath.Join(t.TempDir(), "namespace")
	if err := os.WriteFile(file, []byte("team-b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := namespaceFile
	namespaceFile = file
	t.Cleanup(func() { namespaceFile = old })
	opts := testOptions()
	opts.LeaderElectionNamespace = ""
	opts.LeaseDuration, opts.RenewDeadline, opts.RetryPeriod = ptr.To(7*time.Second), ptr.To(5*time.Second), ptr.To(time.Second)
	c, err := electorConfig(unreachable, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Namespace != "team-b" {
		t.Errorf("Namespace = %q, want team-b from the Pod", c.Namespace)
	}
	if c.KeepLease != !opts.LeaderElectionReleaseOnCancel {
		t.Error("KeepLease does not follow LeaderElectionReleaseOnCancel")
	}
	if c.LeaseDuration != 7*time.Second || c.RenewDeadline != 5*time.Second || c.RetryPeriod != time.Second {
		t.Errorf("timings = %v/%v/%v, want 7s/5s/1s from the options", c.LeaseDuration, c.RenewDeadline, c.RetryPeriod)
	}
	host, _ := os.Hostname()
	if !strings.HasPrefix(c.Identity, host+"_") {
		t.Errorf("Identity = %q, want controller-runtime's <host>_<uuid>", c.Identity)
	}
}

func TestNewManagerRejects(t *testing.T) {
	old := namespaceFile
	namespaceFile = filepath.Join(t.TempDir(), "absent")
	t.Cleanup(func() { namespaceFile = old })
	for _, tc := range []struct {
		name    string
		change  func(*manager.Options)
		options []Option
		want    string
	}{
		{"no ID", func(o *manager.Options) { o.LeaderElectionID = "" }, nil, "LeaderElectionID must be set"},
		{"no namespace outside a Pod", func(o *manager.Options) { o.LeaderElectionNamespace = "" }, nil, "set LeaderElectionNamespace"},
		{"configmaps lock", func(o *manager.Options) { o.LeaderElectionResourceLock = "configmapsleases" }, nil, `LeaderElectionResourceLock "configmapsleases" is not supported`},
		{"lock interface", func(o *manager.Options) { o.LeaderElectionResourceLockInterface = &resourcelock.LeaseLock{} }, nil, "LeaderElectionResourceLockInterface is not supported"},
		{"labels", func(o *manager.Options) { o.LeaderElectionLabels = map[string]string{"a": "b"} }, nil, "LeaderElectionLabels is not supported"},
		{"bad timings", func(o *manager.Options) { o.RenewDeadline = ptr.To(20 * time.Second) }, nil, "invalid leader election options: elector: invalid LeaseDuration"},
		{"option moves the Lease", func(*manager.Options) {}, []Option{WithConfig(func(c *elector.Config) { c.Name = "x" })}, "set LeaderElectionNamespace and LeaderElectionID instead"},
	} {
		opts := testOptions()
		tc.change(&opts)
		_, err := NewManager(unreachable, opts, tc.options...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: NewManager = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestLeaderElectionOffWrapsOnly(t *testing.T) {
	opts := testOptions()
	opts.LeaderElection = false
	mgr, err := NewManager(unreachable, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := newStarted(true)
	if err := mgr.Add(r); err != nil {
		t.Fatal(err)
	}
	if err := AddHealthChecks(mgr); err != nil {
		t.Fatal(err)
	}
	cancel, done := startManager(t, mgr)
	testwait.Recv(t, mgr.Elected(), "this replica to lead")
	if _, ok := TermFrom(testwait.Recv(t, r.ch, "the runnable to start")); ok {
		t.Error("a term without leader election")
	}
	cancel()
	if err := testwait.Recv(t, done, "Start to return"); err != nil {
		t.Fatal(err)
	}
}

func TestAddHealthChecksNeedsThisManager(t *testing.T) {
	opts := testOptions()
	opts.LeaderElection = false
	plain, err := manager.New(unreachable, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := AddHealthChecks(plain); err == nil {
		t.Error("AddHealthChecks accepted a manager from manager.New")
	}
}

func TestStartTwice(t *testing.T) {
	mgr := newTestManager(t, fake.NewLeases(), testOptions())
	startManager(t, mgr)
	testwait.Recv(t, mgr.Elected(), "this replica to lead")
	if err := mgr.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Errorf("second Start = %v, want already started", err)
	}
}

type baseKey struct{}

func TestBaseContextReachesLeaderOnlyRunnables(t *testing.T) {
	opts := testOptions()
	opts.BaseContext = func() context.Context { return context.WithValue(context.Background(), baseKey{}, "base") }
	mgr := newTestManager(t, fake.NewLeases(), opts)
	r := newStarted(true)
	if err := mgr.Add(r); err != nil {
		t.Fatal(err)
	}
	startManager(t, mgr)
	ctx := testwait.Recv(t, r.ch, "the leader-only runnable to start")
	if v, _ := ctx.Value(baseKey{}).(string); v != "base" {
		t.Errorf("a leader-only runnable's context has %q under the BaseContext key, want %q", v, "base")
	}
	if _, ok := TermFrom(ctx); !ok {
		t.Error("no term in a leader-only runnable's context")
	}
}

func TestGracefulShutdownTimeoutLeavesTheLeaseHeld(t *testing.T) {
	leases := fake.NewLeases()
	opts := testOptions()
	opts.GracefulShutdownTimeout = ptr.To(time.Duration(0)) // Start does not wait
	mgr := newTestManager(t, leases, opts)
	release := make(chan struct{})
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		<-release // a reconcile that takes its time to stop
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock) // a failed test's runnable returns too
	testwait.Recv(t, mgr.Elected(), "this replica to lead")
	cancel()
	if err := testwait.Recv(t, done, "Start to return"); err != nil {
		t.Fatalf("Start = %v, want nil", err)
	}
	if h := holder(t, leases); h != testID {
		t.Fatalf("holder when Start returned = %q, want %q: the Lease must stay held while a leader-only runnable runs", h, testID)
	}
	// The campaign goes on in the background and releases the Lease once
	// the runnable has returned.
	view := mgr.Elector().Subscribe(t.Context())
	unblock()
	for {
		v, ok := testwait.RecvOK(t, view, "the Lease to be released")
		if !ok {
			t.Fatal("the elector's view ended before the Lease was released")
		}
		if v.Identity == "" {
			break
		}
	}
}
