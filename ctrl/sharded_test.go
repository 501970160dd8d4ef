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
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/fake"
	"github.com/elector-dev/elector/internal/testwait"
	"github.com/elector-dev/elector/shard"
)

const testGroup = "workers"

// syncBuffer is a bytes.Buffer for logs written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testSharded is a sharded manager on fake Leases and a fake clock.
type testSharded struct {
	m      *ShardedManager
	leases *fake.Leases
	clock  *clocktesting.FakeClock
	reg    *prometheus.Registry
	logs   *syncBuffer
}

func shardedTestOptions(leases *fake.Leases, clk *clocktesting.FakeClock, reg *prometheus.Registry, logs *syncBuffer, k int) ShardedOptions {
	return ShardedOptions{
		Group:      testGroup,
		Shards:     k,
		Namespace:  testNS,
		Identity:   testID,
		Leases:     leases.Leases(testNS),
		Clock:      clk,
		Registerer: reg,
		Logger:     slog.New(slog.NewTextHandler(logs, nil)),
	}
}

func newTestSharded(t *testing.T, k int, setup SetupFunc) *testSharded {
	t.Helper()
	return newTestShardedOn(t, fake.NewLeases(), clocktesting.NewFakeClock(time.Now()), testID, k, setup)
}

// newTestShardedOn is a replica named id on shared Leases and clock.
func newTestShardedOn(t *testing.T, leases *fake.Leases, clk *clocktesting.FakeClock, id string, k int, setup SetupFunc) *testSharded {
	t.Helper()
	ts := &testSharded{leases: leases, clock: clk, reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	so := shardedTestOptions(ts.leases, ts.clock, ts.reg, ts.logs, k)
	so.Identity = id
	m, err := NewShardedManager(unreachable, manager.Options{Metrics: metricsserver.Options{BindAddress: "0"}}, so, setup)
	if err != nil {
		t.Fatal(err)
	}
	ts.m = m
	return ts
}

func noSetup(manager.Manager, Range) error { return nil }

// TestShardedOptionsAreValidatedInOnePlace: each bad option is refused
// by NewShardedManager with an error that names it.
func TestShardedOptionsAreValidatedInOnePlace(t *testing.T) {
	leases := fake.NewLeases()
	clk := clocktesting.NewFakeClock(time.Now())
	good := func() ShardedOptions {
		return shardedTestOptions(leases, clk, prometheus.NewRegistry(), &syncBuffer{}, 4)
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*ShardedOptions)
		want   string
	}{
		{"no shards", func(o *ShardedOptions) { o.Shards = 0 }, "Shards"},
		{"too many shards", func(o *ShardedOptions) { o.Shards = shard.MaxShards + 1 }, "Shards"},
		{"bad group", func(o *ShardedOptions) { o.Group = "Workers_1" }, "Group"},
		{"no group", func(o *ShardedOptions) { o.Group = "" }, "Group"},
		{"bad key", func(o *ShardedOptions) { o.Key = "object.metadata.name" }, "Key"},
		{"bad timings", func(o *ShardedOptions) { o.RenewDeadline = 20 * time.Second }, "LeaseDuration"},
		{"stop grace too long", func(o *ShardedOptions) { o.StopGrace = 9 * time.Second }, "StopGrace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good()
			tc.change(&o)
			var ce *elector.ConfigError
			if err := o.Validate(); !errors.As(err, &ce) || ce.Field != tc.want {
				t.Fatalf("Validate() = %v, want a *elector.ConfigError on %s", err, tc.want)
			}
			if _, err := NewShardedManager(unreachable, manager.Options{}, o, noSetup); !errors.As(err, &ce) || ce.Field != tc.want {
				t.Fatalf("NewShardedManager = %v, want a *elector.ConfigError on %s", err, tc.want)
			}
		})
	}
	if _, err := NewShardedManager(unreachable, manager.Options{}, good(), nil); err == nil || !strings.Contains(err.Error(), "setup") {
		t.Errorf("NewShardedManager without setup = %v, want an error about setup", err)
	}
	if _, err := NewShardedManager(nil, manager.Options{}, good(), noSetup); err == nil {
		t.Error("NewShardedManager without a rest.Config succeeded")
	}
	old := namespaceFile
	namespaceFile = filepath.Join(t.TempDir(), "absent")
	t.Cleanup(func() { namespaceFile = old })
	o := good()
	o.Namespace = ""
	if _, err := NewShardedManager(unreachable, manager.Options{}, o, noSetup); err == nil || !strings.Contains(err.Error(), "ShardedOptions.Namespace") {
		t.Errorf("NewShardedManager outside a Pod without Namespace = %v, want an error naming ShardedOptions.Namespace", err)
	}
}

type userBaseKey struct{}

// TestShardManagerOptions: a shard's manager has no election, metrics,
// probes or webhooks, waits for every runnable at shutdown, allows
// controller names to repeat, keeps the user's BaseContext values and
// adds the term and the range; its informers list with the range's
// selector (a List, not a streaming watch list), hold only the range's
// objects, and report a server that ignored the selector once in the log
// and in the fallback gauge.
func TestShardManagerOptions(t *testing.T) {
	ts := newTestSharded(t, 2, noSetup)
	ts.m.opts.BaseContext = func() context.Context { return context.WithValue(context.Background(), userBaseKey{}, "user") }
	ts.m.opts.LeaderElection = true
	ts.m.opts.HealthProbeBindAddress = ":8081"
	userNS := map[string]cache.Config{"ns": {}}
	ts.m.opts.Cache.ByObject = map[client.Object]cache.ByObject{&corev1.ConfigMap{}: {Namespaces: userNS}}
	r := testRange(t)
	term := elector.Term{Token: 42}
	o := ts.m.shardOptions(r, term)
	for _, bo := range o.Cache.ByObject {
		bo.Namespaces["other"] = cache.Config{} // what cache.New's defaulting does
	}
	if len(userNS) != 1 {
		t.Error("a shard's cache options share the user's ByObject.Namespaces map: shards starting together would race on it")
	}
	switch {
	case o.LeaderElection:
		t.Error("a shard's manager runs an election")
	case o.Metrics.BindAddress != "0" || o.HealthProbeBindAddress != "0" || o.PprofBindAddress != "":
		t.Errorf("a shard's manager serves metrics %q, probes %q or pprof %q", o.Metrics.BindAddress, o.HealthProbeBindAddress, o.PprofBindAddress)
	case o.GracefulShutdownTimeout == nil || *o.GracefulShutdownTimeout >= 0:
		t.Errorf("GracefulShutdownTimeout = %v, want negative (wait for every runnable)", o.GracefulShutdownTimeout)
	case o.Controller.SkipNameValidation == nil || !*o.Controller.SkipNameValidation:
		t.Error("controller name validation is on: a shard owned twice in a process could not register its controllers again")
	}
	ctx := o.BaseContext()
	if got, ok := TermFrom(ctx); !ok || got != term {
		t.Errorf("TermFrom(BaseContext()) = %v, %v; want %v", got, ok, term)
	}
	if got, ok := RangeFrom(ctx); !ok || got != r {
		t.Errorf("RangeFrom(BaseContext()) = %v, %v; want %v", got, ok, r)
	}
	if ctx.Value(userBaseKey{}) != "user" {
		t.Error("the user's BaseContext values are lost")
	}

	in, out := configMaps(t, r, 3)
	f := &fakeLW{list: func() runtime.Object {
		return &corev1.ConfigMapList{ListMeta: metav1.ListMeta{ResourceVersion: "5"}, Items: append(append([]corev1.ConfigMap(nil), in...), out...)}
	}}
	for i := range 2 { // two informers: the log line comes once
		fw := watch.NewFakeWithChanSize(8, false)
		f.mu.Lock()
		f.watch = fw
		f.mu.Unlock()
		inf := o.Cache.NewInformer(f.lw(), &corev1.ConfigMap{}, 0, toolscache.Indexers{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); inf.RunWithContext(ctx) }()
		testwait.Until(t, "the shard's informer to sync", inf.HasSynced)
		if i == 0 {
			calls := f.calls()
			if calls[0].Watch || calls[0].SendInitialEvents != nil || calls[0].ShardSelector != r.Selector() {
				t.Errorf("the informer's first call %+v, want a List with ShardSelector %q", calls[0], r.Selector())
			}
			fw.Add(&out[0]) // another range's: dropped
			extra := in[0].DeepCopy()
			extra.Labels = map[string]string{"seen": "yes"}
			fw.Modify(extra)
			testwait.Until(t, "the informer to apply the watch event", func() bool {
				obj, ok, _ := inf.GetStore().GetByKey("ns/" + in[0].Name)
				return ok && obj.(*corev1.ConfigMap).Labels["seen"] == "yes"
			})
		}
		if got := inf.GetStore().ListKeys(); len(got) != len(in) {
			t.Errorf("the informer holds %v, want only the range's %d objects", got, len(in))
		}
		cancel()
		testwait.Recv(t, done, "the informer to stop")
	}
	if n := strings.Count(ts.logs.String(), "The API server did not apply the shard selector"); n != 1 {
		t.Errorf("the fallback was logged %d times, want once:\n%s", n, ts.logs.String())
	}
	if v := testutil.ToFloat64(ts.m.metrics.fallback); v != 1 {
		t.Errorf("%s = %v, want 1", MetricShardSelectorFallback, v)
	}
	if v := testutil.ToFloat64(ts.m.metrics.filtered); v != 3+3+1 {
		t.Errorf("%s = %v, want 7 (two lists of 3 and one watch event)", MetricShardFilteredObjects, v)
	}
}

// reconciler records reconciles; block, when set, holds each reconcile
// until it is closed.
type reconciler struct {
	entered  chan context.Context
	block    chan struct{}
	ignore   bool // ignore ctx while blocked
	returned atomic.Int32
}

func (r *reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	r.entered <- ctx
	if r.block != nil {
		if !r.ignore {
			<-ctx.Done()
		}
		<-r.block
	}
	r.returned.Add(1)
	return reconcile.Result{}, nil
}

// channelSetup registers, in each shard's manager, a controller fed by
// the shard's channel.
func channelSetup(rec *reconciler, chans []chan event.GenericEvent) SetupFunc {
	return func(mgr manager.Manager, r Range) error {
		c, err := controller.New("configmaps", mgr, controller.Options{Reconciler: rec})
		if err != nil {
			return err
		}
		return c.Watch(source.Channel(chans[r.Index], &handler.EnqueueRequestForObject{}))
	}
}

func objectEvent(name string) event.GenericEvent {
	return event.GenericEvent{Object: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name)}}}
}

func startSharded(t *testing.T, m *ShardedManager) (context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- m.Start(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		testwait.Recv(t, finished, "Start to return after its context ended")
	})
	return cancel, done
}

func running(m *ShardedManager) []shard.Owned { return m.Shards().Assignment().Running }

// TestShardedReconcilesStopBeforeTheShardIsHandedOn: each owned shard
// gets a manager whose reconciles carry the shard's term (its fencing
// token) and range; at shutdown a shard's function returns — and so the
// shard can be handed on — only after its reconcile in flight returned.
func TestShardedReconcilesStopBeforeTheShardIsHandedOn(t *testing.T) {
	rec := &reconciler{entered: make(chan context.Context, 4), block: make(chan struct{})}
	chans := []chan event.GenericEvent{make(chan event.GenericEvent, 1), make(chan event.GenericEvent, 1)}
	ts := newTestSharded(t, 2, channelSetup(rec, chans))
	stopped := make(chan int32, 2)
	ts.m.stopped = func(Range) { stopped <- rec.returned.Load() }
	cancel, done := startSharded(t, ts.m)

	testwait.Until(t, "the replica to run both shards", func() bool { return len(running(ts.m)) == 2 })
	owned := running(ts.m)
	testwait.Send(t, chans[1], objectEvent("a"), "an event to shard 1")
	ctx := testwait.Recv(t, rec.entered, "a reconcile in shard 1")
	term, ok := TermFrom(ctx)
	if !ok || term.Token != owned[1].Token {
		t.Errorf("TermFrom(reconcile ctx) = %v, %v; want shard 1's token %d", term, ok, owned[1].Token)
	}
	if r, ok := RangeFrom(ctx); !ok || r.Index != 1 || r.Shards != 2 {
		t.Errorf("RangeFrom(reconcile ctx) = %v, %v; want shard 1 of 2", r, ok)
	}

	cancel()
	testwait.Done(t, ctx, "the reconcile's context to end at shutdown")
	// Shard 0 had nothing in flight: it stops at once.
	if n := testwait.Recv(t, stopped, "shard 0's function to return"); n != 0 {
		t.Fatalf("a shard's function returned after %d reconciles, want 0 so far", n)
	}
	select {
	case <-stopped:
		t.Fatal("shard 1's function returned while its reconcile was still running")
	case err := <-done:
		t.Fatalf("Start returned %v while a reconcile was still running", err)
	default:
	}
	close(rec.block)
	if n := testwait.Recv(t, stopped, "shard 1's function to return"); n != 1 {
		t.Errorf("shard 1's function returned when %d reconciles had returned, want 1", n)
	}
	if err := testwait.Recv(t, done, "Start to return"); err != nil {
		t.Errorf("Start = %v, want nil after a clean shutdown", err)
	}
	l, err := ts.leases.Leases(testNS).Get(context.Background(), shard.AssignmentName(testGroup), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	table, err := shard.TableOf(l)
	if err != nil {
		t.Fatal(err)
	}
	for i, sl := range table.Shards {
		if sl.Owner != "" {
			t.Errorf("shard %d still owned by %q after shutdown, want released", i, sl.Owner)
		}
	}
}

// TestShardedOverrunFailsTheManager: a reconcile that ignores its
// context past StopGrace makes Start return ErrStopOverrun (exit the
// process), and the shard's function still does not return before the
// reconcile does.
func TestShardedOverrunFailsTheManager(t *testing.T) {
	rec := &reconciler{entered: make(chan context.Context, 4), block: make(chan struct{}), ignore: true}
	chans := []chan event.GenericEvent{make(chan event.GenericEvent, 1)}
	ts := newTestSharded(t, 1, channelSetup(rec, chans))
	stopped := make(chan int32, 1)
	ts.m.stopped = func(Range) { stopped <- rec.returned.Load() }
	cancel, done := startSharded(t, ts.m)
	t.Cleanup(func() { close(rec.block) })

	testwait.Until(t, "the replica to run its shard", func() bool { return len(running(ts.m)) == 1 })
	testwait.Send(t, chans[0], objectEvent("a"), "an event to shard 0")
	testwait.Recv(t, rec.entered, "a reconcile in shard 0")
	cancel()
	testwait.Until(t, "the shard's stop timer", func() bool { return ts.clock.HasWaiters() })
	var err error
	testwait.Until(t, "Start to return ErrStopOverrun", func() bool {
		select {
		case err = <-done:
			return true
		default:
			ts.clock.Step(time.Second)
			return false
		}
	})
	if !errors.Is(err, elector.ErrStopOverrun) {
		t.Errorf("Start = %v, want ErrStopOverrun", err)
	}
	// The shard's stop timer and its member elector's both run StopGrace
	// on the same clock: either may see the overrun first and end Start
	// (make stress saw the elector's line only). Both say why, at ERROR.
	overrun := func() bool {
		l := ts.logs.String()
		return strings.Contains(l, "The shard's controllers did not stop within StopGrace") ||
			strings.Contains(l, "Leader work has not stopped within StopGrace of shutdown")
	}
	if !overrun() {
		testwait.Until(t, "a line that the shard's work overran StopGrace", overrun)
	}
	select {
	case <-stopped:
		t.Fatal("the shard's function returned while its reconcile was still running")
	default:
	}
}

var _ client.Object = (*corev1.ConfigMap)(nil)

// TestAddHealthChecksOfAShardedManager: AddHealthChecks accepts a
// ShardedManager and adds the shard group's checks under ShardsCheckName,
// served on the embedded manager's probe port.
func TestAddHealthChecksOfAShardedManager(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	leases, clk, reg, logs := fake.NewLeases(), clocktesting.NewFakeClock(time.Now()), prometheus.NewRegistry(), &syncBuffer{}
	m, err := NewShardedManager(unreachable, manager.Options{Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: addr},
		shardedTestOptions(leases, clk, reg, logs, 1), noSetup)
	if err != nil {
		t.Fatal(err)
	}
	if err := AddHealthChecks(m); err != nil {
		t.Fatal(err)
	}
	startSharded(t, m)
	hc := &http.Client{Timeout: 10 * time.Second}
	status := func(path string) int {
		resp, err := hc.Get("http://" + addr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/readyz/" + ShardsCheckName, "/healthz/" + ShardsCheckName} {
		testwait.Until(t, path+" to answer 200", func() bool { return status(path) == http.StatusOK })
	}
	if got := status("/readyz/absent"); got != http.StatusNotFound {
		t.Errorf("/readyz/absent answered %d, want 404 (the check names are not all accepted)", got)
	}
}

// TestShardedManagerWithASingleLeaderController: with LeaderElection on,
// what is added to the ShardedManager directly runs under the single
// election (with the leader's term), next to the shard group.
func TestShardedManagerWithASingleLeaderController(t *testing.T) {
	leases, clk, reg, logs := fake.NewLeases(), clocktesting.NewFakeClock(time.Now()), prometheus.NewRegistry(), &syncBuffer{}
	m, err := NewShardedManager(unreachable, testOptions(), shardedTestOptions(leases, clk, reg, logs, 2), noSetup,
		WithConfig(func(c *elector.Config) {
			c.Leases = leases.Leases(testNS)
			c.Identity = testID
			c.Clock = clk
			c.Registerer = nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	leader := newStarted(true)
	if err := m.Add(leader); err != nil {
		t.Fatal(err)
	}
	cancel, done := startSharded(t, m)
	ctx := testwait.Recv(t, leader.ch, "the leader-only runnable to start")
	if term, ok := TermFrom(ctx); !ok {
		t.Error("the leader-only runnable has no term")
	} else if _, isShard := RangeFrom(ctx); isShard {
		t.Errorf("the leader-only runnable (token %d) has a shard's range", term.Token)
	}
	testwait.Until(t, "the replica to run both shards", func() bool { return len(running(m)) == 2 })
	cancel()
	if err := testwait.Recv(t, done, "Start to return"); err != nil {
		t.Errorf("Start = %v, want nil", err)
	}
}

// stepPaced steps clk by 100ms until cond holds, at most one step per 5ms
// of real time, so that the electors' goroutines keep up with the fake
// clock (testwait.Until polls without sleeping at first: stepping in it
// passed seconds of fake time at once, and members' leases ran out on
// the fake clock before they could renew), and only while watches
// watches are open: a step while a watch is being (re)opened may pass
// its request timeout, and that watch then retries on a timer. It fails
// the test after testwait.Timeout. (make stress and a fresh-clone CI run
// each caught the old loop: 3 in 100 runs hung 30s.)
func stepPaced(t *testing.T, clk *clocktesting.FakeClock, leases *fake.Leases, watches int, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(testwait.Timeout)
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", testwait.Timeout, what)
		case <-tick.C:
		}
		if leases.Watchers() >= watches {
			clk.Step(100 * time.Millisecond)
		}
	}
}

// TestShardedHandoffWaitsForTheOldOwnersReconcile: on a scale-up the
// shard that moves starts in the new replica only after the reconcile
// that the old owner had in flight returned.
func TestShardedHandoffWaitsForTheOldOwnersReconcile(t *testing.T) {
	leases, clk := fake.NewLeases(), clocktesting.NewFakeClock(time.Now())
	recA := &reconciler{entered: make(chan context.Context, 4), block: make(chan struct{})}
	chans := []chan event.GenericEvent{make(chan event.GenericEvent, 1), make(chan event.GenericEvent, 1)}
	a := newTestShardedOn(t, leases, clk, "replica-a", 2, channelSetup(recA, chans))
	cancelA, doneA := startSharded(t, a.m)
	testwait.Until(t, "replica-a to run both shards", func() bool { return len(running(a.m)) == 2 })
	tokenBefore := running(a.m)[1].Token
	testwait.Send(t, chans[1], objectEvent("a"), "an event to shard 1")
	ctxA := testwait.Recv(t, recA.entered, "replica-a's reconcile in shard 1")

	// replica-b's setup records, for each shard it starts, whether
	// replica-a's reconcile had returned by then.
	started := make(chan [2]int32, 2)
	b := newTestShardedOn(t, leases, clk, "replica-b", 2, func(_ manager.Manager, r Range) error {
		started <- [2]int32{int32(r.Index), recA.returned.Load()}
		return nil
	})
	cancelB, doneB := startSharded(t, b.m)
	// The coordinator moves the surplus (shard 1) once the members have
	// been stable for a moment on its clock; replica-a stops shard 1.
	// The clock is stepped only while both replicas' shared watches are
	// open: a step while one is being (re)opened may pass its request
	// timeout on the fake clock, and the watch then retries on a timer
	// that nothing steps once this loop ends (replica-b never saw the
	// release: a fresh-clone CI run and make stress each hung here 30s).
	stepPaced(t, clk, leases, 2, "replica-a to be asked to hand shard 1 over", func() bool { return ctxA.Err() != nil })
	select {
	case s := <-started:
		t.Fatalf("replica-b started shard %d while replica-a's reconcile in shard 1 was running", s[0])
	default:
	}
	close(recA.block)
	// replica-a returns, stops shard 1 and releases it; replica-b may
	// wait on a timer of its own before it starts the shard.
	var s [2]int32
	stepPaced(t, clk, leases, 2, "replica-b to start the shard handed over", func() bool {
		select {
		case s = <-started:
			return true
		default:
			return false
		}
	})
	if s[0] != 1 || s[1] != 1 {
		t.Errorf("replica-b started shard %d when replica-a had returned %d reconciles, want shard 1 after 1", s[0], s[1])
	}
	testwait.Until(t, "replica-b to run shard 1", func() bool {
		r := running(b.m)
		return len(r) == 1 && r[0].Shard == 1
	})
	if tok := running(b.m)[0].Token; tok <= tokenBefore {
		t.Errorf("shard 1's token went from %d to %d on the handoff, want it to grow", tokenBefore, tok)
	}
	cancelB()
	if err := testwait.Recv(t, doneB, "replica-b's Start to return"); err != nil {
		t.Error(err)
	}
	cancelA()
	if err := testwait.Recv(t, doneA, "replica-a's Start to return"); err != nil {
		t.Error(err)
	}
}
