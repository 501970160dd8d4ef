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
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	testclock "k8s.io/utils/clock/testing"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/testwait"
	"github.com/elector-dev/elector/migrate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var epoch = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

const guard = testwait.DefaultTimeout // failure deadline of waits, not a timing assertion

// oldRecord is the annotation a 0.5 replica writes.
type oldRecord struct {
	HolderIdentity       string      `json:"holderIdentity"`
	LeaseDurationSeconds int         `json:"leaseDurationSeconds"`
	AcquireTime          metav1.Time `json:"acquireTime"`
	RenewTime            metav1.Time `json:"renewTime"`
	LeaderTransitions    int         `json:"leaderTransitions"`
}

func endpoints(rec oldRecord) *corev1.Endpoints {
	b, _ := json.Marshal(rec)
	return &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{
		Name: "elect", Namespace: "default",
		Annotations: map[string]string{migrate.Annotation: string(b)},
	}}
}

type fixture struct {
	t       *testing.T
	cs      *fake.Clientset
	clock   *testclock.FakeClock
	lock    *migrate.Lock
	started chan struct{}
	stopped chan time.Time
	result  chan error
	cancel  context.CancelFunc
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	cs := fake.NewClientset(objs...)
	withResourceVersions(cs)
	f := &fixture{
		t: t, cs: cs, clock: testclock.NewFakeClock(epoch),
		started: make(chan struct{}), stopped: make(chan time.Time, 1), result: make(chan error, 1),
	}
	f.lock = &migrate.Lock{
		Client: typedObjects{f.cs.CoreV1()}, Kind: migrate.Endpoints, Namespace: "default", Name: "elect",
		Identity: "new-0", Clock: f.clock, Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
	return f
}

// run starts the guarded work; it waits for its context to end.
func (f *fixture) run() {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	fn := f.lock.Guard(func(ctx context.Context, _ elector.Term) error {
		close(f.started)
		<-ctx.Done()
		f.stopped <- f.clock.Now()
		return nil
	})
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		f.result <- fn(ctx, elector.Term{Token: 1, Identity: "new-0"})
	}()
	f.t.Cleanup(func() {
		cancel()
		select {
		case <-returned:
		case <-time.After(guard):
			f.t.Error("Guard did not return")
		}
		wctx, wcancel := context.WithTimeout(context.Background(), guard)
		defer wcancel()
		if err := f.lock.Wait(wctx); err != nil { // the old lock's release, after Guard returned
			f.t.Errorf("the old lock's release did not end: %v", err)
		}
	})
}

// step moves the clock by d once the code under test waits on it.
func (f *fixture) step(d time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(guard)
	for !f.clock.HasWaiters() {
		if time.Now().After(deadline) {
			f.t.Fatal("nothing waits on the clock")
		}
		time.Sleep(time.Millisecond)
	}
	f.clock.Step(d)
}

// withResourceVersions makes the fake API server's updates of Endpoints
// conditional on resourceVersion, as a real one's are (the fake's tracker
// ignores it).
func withResourceVersions(cs *fake.Clientset) {
	gvr := corev1.SchemeGroupVersion.WithResource("endpoints")
	var mu sync.Mutex
	next := 100
	cs.PrependReactor("*", "endpoints", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		var obj *corev1.Endpoints
		switch a.GetVerb() {
		case "create":
			obj = a.(k8stesting.CreateAction).GetObject().(*corev1.Endpoints).DeepCopy()
			if _, err := cs.Tracker().Get(gvr, obj.Namespace, obj.Name); err == nil {
				return true, nil, apierrors.NewAlreadyExists(gvr.GroupResource(), obj.Name)
			}
			next++
			obj.ResourceVersion = strconv.Itoa(next)
			return true, obj, cs.Tracker().Create(gvr, obj, obj.Namespace)
		case "update":
			obj = a.(k8stesting.UpdateAction).GetObject().(*corev1.Endpoints).DeepCopy()
			cur, err := cs.Tracker().Get(gvr, obj.Namespace, obj.Name)
			if err != nil {
				return true, nil, err
			}
			if rv := cur.(*corev1.Endpoints).ResourceVersion; obj.ResourceVersion != "" && obj.ResourceVersion != rv {
				return true, nil, apierrors.NewConflict(gvr.GroupResource(), obj.Name, errors.New("the object has been modified"))
			}
			next++
			obj.ResourceVersion = strconv.Itoa(next)
			return true, obj, cs.Tracker().Update(gvr, obj, obj.Namespace)
		}
		return false, nil, nil
	})
}

// setRecord writes rec as an old replica does: read, then update.
func (f *fixture) setRecord(rec oldRecord) {
	f.t.Helper()
	ep, err := f.cs.CoreV1().Endpoints("default").Get(context.Background(), "elect", metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	ep.Annotations = endpoints(rec).Annotations
	if _, err := f.cs.CoreV1().Endpoints("default").Update(context.Background(), ep, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) record() oldRecord {
	f.t.Helper()
	ep, err := f.cs.CoreV1().Endpoints("default").Get(context.Background(), "elect", metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	var r oldRecord
	if err := json.Unmarshal([]byte(ep.Annotations[migrate.Annotation]), &r); err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) notStarted(what string) {
	f.t.Helper()
	select {
	case <-f.started:
		f.t.Fatal(what)
	default:
	}
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	return testwait.Recv(t, ch, what)
}

// TestGuardWaitsOutASilentOldHolder: a 0.5 replica that stopped renewing
// is waited out for a full lease on our clock, from when we saw its record,
// whatever its timestamps say; then the lock is taken with the next
// transition, and released (empty holder) after the work returns.
func TestGuardWaitsOutASilentOldHolder(t *testing.T) {
	f := newFixture(t, endpoints(oldRecord{
		HolderIdentity: "old-0", LeaseDurationSeconds: 10,
		RenewTime: metav1.NewTime(epoch.Add(-time.Hour)), LeaderTransitions: 3,
	}))
	f.run()
	for range 7 { // 14s
		f.step(2 * time.Second)
		f.notStarted("the work started while the old holder's lease ran")
	}
	if h := f.lock.Holder(); h != "old-0" {
		t.Fatalf("Holder() = %q while waiting, want the old holder", h)
	}
	f.step(2 * time.Second) // 16s > max(10s, our 15s)
	wait(t, f.started, "the work to start")
	r := f.record()
	if r.HolderIdentity != "new-0" || r.LeaderTransitions != 4 || r.LeaseDurationSeconds != 15 {
		t.Fatalf("record = %+v, want new-0 with transitions 4 and our 15s", r)
	}
	f.cancel()
	if err := wait(t, f.result, "Guard to return"); err != nil {
		t.Fatalf("Guard = %v", err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), guard)
	defer wcancel()
	if err := f.lock.Wait(wctx); err != nil { // the release follows Guard's return
		t.Fatal(err)
	}
	if r := f.record(); r.HolderIdentity != "" || r.LeaderTransitions != 4 {
		t.Fatalf("record after the work returned = %+v, want released", r)
	}
}

// TestGuardNeverTakesALiveOldHolder: while a 0.5 replica renews, the lock
// is never taken, however long we wait.
func TestGuardNeverTakesALiveOldHolder(t *testing.T) {
	f := newFixture(t, endpoints(oldRecord{HolderIdentity: "old-0", LeaseDurationSeconds: 10}))
	f.run()
	for i := range 30 { // a minute, renewed by the old replica every 2s
		f.setRecord(oldRecord{HolderIdentity: "old-0", LeaseDurationSeconds: 10, RenewTime: metav1.NewTime(epoch.Add(time.Duration(i) * 2 * time.Second))})
		f.step(2 * time.Second)
		f.notStarted("the work started while the old holder renewed")
	}
}

// TestGuardStopsTheWorkWhenAnOldReplicaTakesTheLock: another holder in
// the record is seen at the next renewal; the work stops at once and Guard
// ends the tenure with ErrLockLost, leaving the other's record alone.
func TestGuardStopsTheWorkWhenAnOldReplicaTakesTheLock(t *testing.T) {
	f := newFixture(t)
	f.run()
	wait(t, f.started, "the work to start on a free lock")
	f.setRecord(oldRecord{HolderIdentity: "old-1", LeaseDurationSeconds: 10, LeaderTransitions: 7})
	f.step(elector.DefaultRetryPeriod)
	wait(t, f.stopped, "the work to stop")
	if err := wait(t, f.result, "Guard to return"); !errors.Is(err, migrate.ErrLockLost) {
		t.Fatalf("Guard = %v, want ErrLockLost", err)
	}
	if r := f.record(); r.HolderIdentity != "old-1" || r.LeaderTransitions != 7 {
		t.Fatalf("record = %+v, want old-1's untouched", r)
	}
}

// TestGuardStopsTheWorkByItsStopPointWhenRenewalsFail: the old replicas
// take over a lease after our last write; the work is cancelled at
// RenewDeadline − StopGrace after it, and Deadline says RenewDeadline.
func TestGuardStopsTheWorkByItsStopPointWhenRenewalsFail(t *testing.T) {
	f := newFixture(t)
	f.run()
	wait(t, f.started, "the work to start on a free lock")
	if d, ok := f.lock.Deadline(); !ok || !d.Equal(epoch.Add(elector.DefaultRenewDeadline)) {
		t.Fatalf("Deadline() = %v, %v; want %v", d, ok, epoch.Add(elector.DefaultRenewDeadline))
	}
	f.cs.PrependReactor("update", "endpoints", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("etcd is down")
	})
	stopAt := epoch.Add(elector.DefaultRenewDeadline - elector.DefaultStopGrace)
	for f.clock.Now().Before(stopAt) {
		f.step(time.Second)
	}
	stopped := wait(t, f.stopped, "the work to stop")
	if stopped.After(stopAt) {
		t.Fatalf("the work stopped at %v, after its stop point %v", stopped.Sub(epoch), stopAt.Sub(epoch))
	}
	if err := wait(t, f.result, "Guard to return"); !errors.Is(err, migrate.ErrLockLost) {
		t.Fatalf("Guard = %v, want ErrLockLost", err)
	}
}

// TestGuardOnAConfigMapLock: client-go's "configmaps" lock keeps the same
// record in the same annotation of a ConfigMap.
func TestGuardOnAConfigMapLock(t *testing.T) {
	f := newFixture(t)
	f.lock.Kind = migrate.ConfigMaps
	f.run()
	wait(t, f.started, "the work to start on a free lock")
	cm, err := f.cs.CoreV1().ConfigMaps("default").Get(context.Background(), "elect", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("no ConfigMap lock: %v", err)
	}
	var r oldRecord
	if err := json.Unmarshal([]byte(cm.Annotations[migrate.Annotation]), &r); err != nil || r.HolderIdentity != "new-0" {
		t.Fatalf("ConfigMap record %q (%v), want holder new-0", cm.Annotations[migrate.Annotation], err)
	}
	if _, err := f.cs.CoreV1().Endpoints("default").Get(context.Background(), "elect", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("an Endpoints lock was written too (%v)", err)
	}
}

// ctxObjects fails a request whose context has ended, as a real client
// does (client-go's fake clientset ignores contexts).
type ctxObjects struct{ migrate.Objects }

func (c ctxObjects) Get(ctx context.Context, kind migrate.Kind, ns, name string) (*metav1.ObjectMeta, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.Objects.Get(ctx, kind, ns, name)
}

func (c ctxObjects) Create(ctx context.Context, kind migrate.Kind, meta *metav1.ObjectMeta) (*metav1.ObjectMeta, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.Objects.Create(ctx, kind, meta)
}

func (c ctxObjects) SetAnnotation(ctx context.Context, kind migrate.Kind, meta *metav1.ObjectMeta, key, value string) (*metav1.ObjectMeta, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.Objects.SetAnnotation(ctx, kind, meta, key, value)
}

// TestGuardRenewsWhenItsClockIsBehindTheWallClock: the injected clock
// (here a fake one, days behind the wall clock; in the simulator a node's
// clock an hour off) times the renewals, and a renewal's request timeout
// is a duration on it, never an instant of that clock handed to a context
// (which measures the wall clock): such a deadline had passed before the
// request was sent, every renewal failed, and the work was stopped with
// ErrLockLost after RenewDeadline − StopGrace of every tenure, with the
// API server healthy (found by the simulator, class liveness/election).
func TestGuardRenewsWhenItsClockIsBehindTheWallClock(t *testing.T) {
	f := newFixture(t)
	f.lock.Client = ctxObjects{f.lock.Client}
	f.run()
	wait(t, f.started, "the work to start on a free lock")
	for range 3 * elector.DefaultRenewDeadline / elector.DefaultRetryPeriod {
		f.step(elector.DefaultRetryPeriod)
		want := f.clock.Now().Truncate(time.Second)
		deadline := time.After(guard)
		for !f.record().RenewTime.Time.Equal(want) {
			select {
			case <-deadline:
				t.Fatalf("no renewal at %v (record renewed at %v)", want.Sub(epoch), f.record().RenewTime.Sub(epoch))
			case stopped := <-f.stopped:
				t.Fatalf("the work stopped at %v with the API server healthy: %v", stopped.Sub(epoch), <-f.result)
			case <-time.After(time.Millisecond):
			}
		}
	}
}
