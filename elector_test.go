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
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	testclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/fake"
	"github.com/elector-dev/elector/internal/testwait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	ns    = "team-a"
	lease = "lock"
	// guard bounds every wait for something that must happen; it is a
	// failure deadline, never a timing assertion.
	guard = testwait.DefaultTimeout
)

var epoch = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// idKey carries a candidate's identity into the fake API's reactor.
type idKey struct{}

// world is one Lease API, one fake clock and an overlap detector shared by
// the candidates of a test.
type world struct {
	t      *testing.T
	leases *fake.Leases
	clock  *testclock.FakeClock

	mu       sync.Mutex
	acting   map[string]bool
	overlaps []string
	fail     map[string]error // identity -> error for its updates
	requests map[string]map[string]int
	updates  chan string
	// hangWatches is how many of the next watch requests get no answer
	// until their context ends (a connection that died unnoticed).
	hangWatches int
}

func newWorld(t *testing.T) *world {
	w := &world{
		t: t, leases: fake.NewLeases(), clock: testclock.NewFakeClock(epoch),
		acting: map[string]bool{}, fail: map[string]error{},
		requests: map[string]map[string]int{}, updates: make(chan string, 100),
	}
	w.leases.SetReactor(func(ctx context.Context, verb, _, _ string) error {
		id, _ := ctx.Value(idKey{}).(string)
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.requests[id] == nil {
			w.requests[id] = map[string]int{}
		}
		w.requests[id][verb]++
		if verb == "watch" && w.hangWatches > 0 {
			w.hangWatches--
			w.mu.Unlock()
			<-ctx.Done()
			w.mu.Lock()
			return ctx.Err()
		}
		if verb == "update" {
			select {
			case w.updates <- id:
			default:
			}
			return w.fail[id]
		}
		return nil
	})
	return w
}

func (w *world) setFail(id string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail[id] = err
}

func (w *world) count(id, verb string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.requests[id][verb]
}

func (w *world) enter(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for other, on := range w.acting {
		if on && other != id {
			w.overlaps = append(w.overlaps, other+" and "+id)
		}
	}
	w.acting[id] = true
}

func (w *world) leave(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.acting[id] = false
}

func (w *world) checkNoOverlap() {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.overlaps) > 0 {
		w.t.Fatalf("leader tenures overlapped: %v", w.overlaps)
	}
}

func (w *world) config(id string) elector.Config {
	return elector.Config{
		Leases: w.leases.Leases(ns), Namespace: ns, Name: lease, Identity: id,
		Clock: w.clock, Logger: slog.New(slog.NewTextHandler(w.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func (w *world) get() *coordinationv1.Lease {
	w.t.Helper()
	l, err := w.leases.Leases(ns).Get(context.Background(), lease, metav1.GetOptions{})
	if err != nil {
		w.t.Fatalf("unable to get lease: %v", err)
	}
	return l
}

// candidate runs one elector whose leader function records its tenure.
type candidate struct {
	id        string
	e         *elector.Elector
	cancel    context.CancelFunc
	done      chan struct{} // closed when Run returned
	err       error         // what Run returned
	started   chan elector.Term
	stopped   chan time.Time // fake-clock time when the function returned
	ignoring  bool           // the function ignores its context
	release   chan struct{}  // unblocks an ignoring function
	cancelled chan struct{}  // closed when the function's context ends
}

func (w *world) start(id string, mod func(*elector.Config)) *candidate {
	w.t.Helper()
	return w.startWith(id, mod, false)
}

// startWith starts a candidate whose leader function ignores its context
// when ignoring is set.
func (w *world) startWith(id string, mod func(*elector.Config), ignoring bool) *candidate {
	w.t.Helper()
	cfg := w.config(id)
	if mod != nil {
		mod(&cfg)
	}
	e, err := elector.New(cfg)
	if err != nil {
		w.t.Fatalf("New: %v", err)
	}
	c := &candidate{
		id: id, e: e, done: make(chan struct{}),
		started: make(chan elector.Term, 1), stopped: make(chan time.Time, 1),
		release: make(chan struct{}), ignoring: ignoring, cancelled: make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), idKey{}, id))
	c.cancel = cancel
	go func() {
		defer close(c.done)
		c.err = e.Run(ctx, func(ctx context.Context, term elector.Term) error {
			w.enter(id)
			context.AfterFunc(ctx, func() { close(c.cancelled) })
			c.started <- term
			if c.ignoring {
				<-c.release
			} else {
				<-ctx.Done()
			}
			w.leave(id)
			c.stopped <- w.clock.Now()
			return nil
		})
	}()
	w.t.Cleanup(func() {
		cancel()
		select {
		case <-c.release:
		default:
			close(c.release)
		}
		select {
		case <-c.done:
		case <-time.After(guard):
			w.t.Errorf("%s: Run did not return after cancel", id)
		}
	})
	return c
}

// result waits for c's Run to return and returns its error.
func (c *candidate) result(t *testing.T) error {
	t.Helper()
	wait(t, c.done, c.id+"'s Run to return")
	return c.err
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	return testwait.Recv(t, ch, what)
}

// updateBy waits until candidate id sends an update request.
func (w *world) updateBy(id string) {
	w.t.Helper()
	deadline := time.After(guard)
	for {
		select {
		case got := <-w.updates:
			if got == id {
				return
			}
		case <-deadline:
			w.t.Fatalf("timed out waiting for an update by %s", id)
		}
	}
}

// watch returns the Lease's changes as the API server stores them.
func (w *world) watch() <-chan watch.Event {
	w.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w.t.Cleanup(cancel)
	wi, err := w.leases.Leases(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: w.get().ResourceVersion})
	if err != nil {
		w.t.Fatal(err)
	}
	return wi.ResultChan()
}

// follows waits until c has seen leader id.
func follows(t *testing.T, c *candidate, id string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := c.e.Subscribe(ctx)
	for {
		if v := wait(t, ch, c.id+" to see leader "+id); v.Identity == id {
			return
		}
	}
}

func TestFreshLeaseIsAcquiredAndReleasedLikeClientGo(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	term := wait(t, a.started, "a to lead")
	if term.Token != 0 || term.Identity != "a" {
		t.Fatalf("term = %+v, want token 0 for a fresh Lease, identity a", term)
	}
	l := w.get()
	s := l.Spec
	if *s.HolderIdentity != "a" || *s.LeaseDurationSeconds != 15 || *s.LeaseTransitions != 0 ||
		!s.AcquireTime.Time.Equal(epoch) || !s.RenewTime.Time.Equal(epoch) {
		t.Fatalf("lease spec = %+v, want client-go's record for holder a", s)
	}
	if v := a.e.Leader(); !v.Self || v.Identity != "a" {
		t.Fatalf("Leader() = %+v, want self", v)
	}

	a.cancel()
	if err := a.result(t); err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	s = w.get().Spec
	if *s.HolderIdentity != "" || *s.LeaseDurationSeconds != 1 || *s.LeaseTransitions != 0 {
		t.Fatalf("released spec = holder %q duration %d transitions %d, want client-go's release (\"\", 1, 0)",
			*s.HolderIdentity, *s.LeaseDurationSeconds, *s.LeaseTransitions)
	}
}

func TestGracefulHandoffNeedsNoTimeToPass(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	b := w.start("b", nil)
	follows(t, b, "a")

	a.cancel()
	term := wait(t, b.started, "b to take over") // the fake clock never moved
	if term.Token != 1 {
		t.Fatalf("b token = %d, want 1", term.Token)
	}
	if w.clock.Now() != epoch {
		t.Fatal("the clock moved")
	}
	w.checkNoOverlap()
}

func TestFollowerSendsNoRequestsInSteadyState(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	b := w.start("b", nil)
	follows(t, b, "a")
	before := w.count("b", "get") + w.count("b", "update") + w.count("b", "create") + w.count("b", "list")
	renewals := w.count("a", "update")
	for range 5 {
		w.clock.Step(elector.DefaultRetryPeriod)
		w.updateBy("a")
	}
	after := w.count("b", "get") + w.count("b", "update") + w.count("b", "create") + w.count("b", "list")
	if after != before {
		t.Fatalf("follower made %d requests while the leader renewed 5 times, want 0", after-before)
	}
	if got := w.count("a", "update") - renewals; got != 5 {
		t.Fatalf("leader wrote %d times in 5 renew intervals, want 5", got)
	}
}

func TestSilentLeaderIsTakenOverOnlyAfterItsLeaseExpiresOnTheTakersClock(t *testing.T) {
	w := newWorld(t)
	_, err := w.leases.Leases(ns).Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: lease},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To("ghost"), LeaseDurationSeconds: ptr.To[int32](15),
			LeaseTransitions: ptr.To[int32](4),
			// A renewTime far in the past must not matter: only the
			// taker's own clock counts.
			RenewTime: &metav1.MicroTime{Time: epoch.Add(-time.Hour)},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := w.start("b", nil)
	follows(t, b, "ghost")
	w.clock.Step(15*time.Second - time.Millisecond)
	select {
	case <-b.started:
		t.Fatal("b took the lease before it expired on b's clock")
	default:
	}
	w.clock.Step(time.Millisecond)
	term := wait(t, b.started, "b to take over")
	if term.Token != 5 {
		t.Fatalf("token = %d, want 5 (transitions 4 + 1)", term.Token)
	}
}

func TestLeaderStepsDownBeforeRenewDeadlineWhenRenewalsFail(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	b := w.start("b", nil)
	follows(t, b, "a")

	w.setFail("a", apierrors.NewServiceUnavailable("etcd is down"))
	renewDeadline := epoch.Add(elector.DefaultRenewDeadline)
	for w.clock.Now().Before(epoch.Add(elector.DefaultRenewDeadline - elector.DefaultStopGrace)) {
		w.clock.Step(elector.DefaultRetryPeriod)
		select {
		case <-a.stopped:
			t.Fatal("a stopped before its stop point")
		default:
		}
		if w.clock.Now().Before(epoch.Add(elector.DefaultRenewDeadline - elector.DefaultStopGrace)) {
			w.updateBy("a")
		}
	}
	stoppedAt := wait(t, a.stopped, "a to stop")
	if stoppedAt.After(renewDeadline) {
		t.Fatalf("a stopped at %v, after its renew deadline %v", stoppedAt, renewDeadline)
	}
	err := a.result(t)
	if !errors.Is(err, elector.ErrLeadershipLost) {
		t.Fatalf("Run = %v, want ErrLeadershipLost", err)
	}
	if h := *w.get().Spec.HolderIdentity; h != "a" {
		t.Fatalf("holder = %q: a lost leader must not write the Lease", h)
	}
	// b takes over only at 15s after it saw a's last renewal (at epoch).
	w.clock.Step(epoch.Add(elector.DefaultLeaseDuration).Sub(w.clock.Now()) - time.Millisecond)
	select {
	case <-b.started:
		t.Fatal("b took over before a's lease expired on b's clock")
	default:
	}
	w.clock.Step(time.Millisecond)
	wait(t, b.started, "b to take over")
	w.checkNoOverlap()
}

func TestLeaderStepsDownAtOnceWhenAnotherHolderAppears(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")

	l := w.get()
	l.Spec.HolderIdentity = ptr.To("intruder")
	l.Spec.LeaseTransitions = ptr.To[int32](7)
	if _, err := w.leases.Leases(ns).Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := a.result(t) // no time passes
	if !errors.Is(err, elector.ErrLeadershipLost) || !strings.Contains(err.Error(), `"intruder"`) {
		t.Fatalf("Run = %v, want ErrLeadershipLost naming the intruder", err)
	}
	if h := *w.get().Spec.HolderIdentity; h != "intruder" {
		t.Fatalf("holder = %q, want the intruder's record untouched", h)
	}
}

func TestLabelEditOnTheLeaseDoesNotDeposeTheLeader(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	l := w.get()
	l.Labels = map[string]string{"team": "a"}
	if _, err := w.leases.Leases(ns).Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	n := w.count("a", "update")
	changes := w.watch()
	w.clock.Step(elector.DefaultRetryPeriod)
	ev := wait(t, changes, "a to renew")
	if got := ev.Object.(*coordinationv1.Lease).Spec.RenewTime; !got.Time.Equal(epoch.Add(elector.DefaultRetryPeriod)) {
		t.Fatalf("renewTime = %v, want %v", got, epoch.Add(elector.DefaultRetryPeriod))
	}
	if !a.e.Leader().Self {
		t.Fatal("a stopped leading after a label edit")
	}
	// One update if a saw the edit first, two if its renewal raced the
	// edit and had to re-read the Lease; never a step-down.
	if got := w.count("a", "update") - n; got < 1 || got > 2 {
		t.Fatalf("renewal took %d updates, want 1 or 2", got)
	}
}

func TestDeletedLeaseIsWaitedOutByFollowers(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	b := w.start("b", nil)
	follows(t, b, "a")

	if err := w.leases.Leases(ns).Delete(context.Background(), lease, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// a learns from its watch, or, if its watch started after the
	// deletion, from its next renewal.
	w.clock.Step(elector.DefaultRetryPeriod)
	err := a.result(t)
	if !errors.Is(err, elector.ErrLeadershipLost) {
		t.Fatalf("Run = %v, want ErrLeadershipLost", err)
	}
	w.clock.Step(elector.DefaultLeaseDuration - elector.DefaultRetryPeriod - time.Millisecond)
	select {
	case <-b.started:
		t.Fatal("b re-created the Lease before a's lease expired on b's clock")
	default:
	}
	// b measures a's lease from when it saw the deletion: at once, or
	// after one of the steps if its loop ran late (a loaded machine).
	var term elector.Term
	deadline := time.After(guard)
	for got := false; !got; {
		if w.clock.Since(epoch) > 2*elector.DefaultLeaseDuration {
			t.Fatal("b did not re-create the Lease within a lease of seeing it deleted")
		}
		w.clock.Step(elector.DefaultRetryPeriod / 4)
		select {
		case term = <-b.started:
			got = true
		case <-deadline:
			t.Fatal("timed out waiting for b to re-create the Lease")
		case <-time.After(20 * time.Millisecond): // real time for b's loop to run
		}
	}
	if term.Token != 1 {
		t.Fatalf("token = %d after re-creation, want 1 (higher than a's 0)", term.Token)
	}
	w.checkNoOverlap()
}

func TestTokenGrowsEvenIfTransitionsWereEditedBackwards(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	b := w.start("b", nil)
	follows(t, b, "a")
	a.cancel()
	wait(t, b.started, "b to lead") // token 1
	b.cancel()
	b.result(t)

	l := w.get()
	l.Spec.LeaseTransitions = ptr.To[int32](0)
	if _, err := w.leases.Leases(ns).Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := w.start("c", nil)
	term := wait(t, c.started, "c to lead")
	if term.Token != 1 {
		// c never saw token 1, so it cannot do better than the record.
		t.Fatalf("c token = %d, want 1", term.Token)
	}
}

func TestStopOverrunIsReported(t *testing.T) {
	w := newWorld(t)
	a := w.startWith("a", nil, true)
	wait(t, a.started, "a to lead")
	w.setFail("a", apierrors.NewServiceUnavailable("etcd is down"))
	for range 3 { // failed renewals at 2s, 4s and 6s
		w.clock.Step(elector.DefaultRetryPeriod)
		w.updateBy("a")
	}
	w.clock.Step(elector.DefaultRetryPeriod) // 8s: the stop point
	wait(t, a.cancelled, "a's work to be cancelled at the stop point")
	select {
	case <-a.done:
		t.Fatalf("Run returned %v before the renew deadline", a.err)
	default:
	}
	w.clock.Step(elector.DefaultStopGrace) // 10s: the renew deadline
	err := a.result(t)
	if !errors.Is(err, elector.ErrStopOverrun) {
		t.Fatalf("Run = %v, want ErrStopOverrun", err)
	}
	if err := a.e.Check(nil); err != nil {
		t.Fatalf("Check = %v after Run returned; it no longer claims to lead", err)
	}
	close(a.release)
}

func TestHealthCheckFailsWhenRenewIsOverdue(t *testing.T) {
	w := newWorld(t)
	a := w.startWith("a", nil, true)
	wait(t, a.started, "a to lead")
	if err := a.e.Check(nil); err != nil {
		t.Fatalf("Check = %v while renewing", err)
	}
	w.setFail("a", apierrors.NewServiceUnavailable("etcd is down"))
	// Stop the loop from running by blocking nothing: step past the
	// renew deadline in one jump; until Run reacts, Check must fail.
	w.clock.Step(elector.DefaultRenewDeadline + time.Second)
	err := a.e.Check(nil)
	select {
	case <-a.done:
		// Run already gave up; it no longer claims to lead.
	default:
		if err == nil {
			t.Fatal("Check passed with the renew overdue")
		}
	}
	close(a.release)
}

func TestRunRejectsASecondConcurrentRun(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	err := a.e.Run(context.Background(), func(context.Context, elector.Term) error { return nil })
	if !errors.Is(err, elector.ErrAlreadyRunning) {
		t.Fatalf("second Run = %v, want ErrAlreadyRunning", err)
	}
}

func TestLeaderFunctionErrorIsReturnedAfterRelease(t *testing.T) {
	w := newWorld(t)
	e, err := elector.New(w.config("a"))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = e.Run(context.Background(), func(context.Context, elector.Term) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the function's error", err)
	}
	if h := *w.get().Spec.HolderIdentity; h != "" {
		t.Fatalf("holder = %q after the function failed, want released", h)
	}
}

func TestForbiddenNamesWhatIsMissingAndTheFix(t *testing.T) {
	w := newWorld(t)
	w.leases.SetReactor(func(_ context.Context, verb, _, name string) error {
		return apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, name,
			errors.New(`User "system:serviceaccount:team-a:app" cannot `+verb+` resource "leases" in API group "coordination.k8s.io" in the namespace "team-a"`))
	})
	a := w.start("a", nil)
	errSoon(t, a.e)
	// Past ForbiddenTimeout: no request was ever accepted.
	stepUntil(t, w, 2*time.Second, time.Minute, a.done, "Run to give up after ForbiddenTimeout")
	err := a.result(t)
	var fe *elector.ForbiddenError
	if !errors.As(err, &fe) {
		t.Fatalf("Run = %v, want *ForbiddenError", err)
	}
	if fe.User != "system:serviceaccount:team-a:app" || fe.Verb != "get" || fe.Namespace != ns || fe.Name != lease {
		t.Fatalf("ForbiddenError = %+v", fe)
	}
	for _, want := range []string{"kind: Role", "resourceNames", "kind: RoleBinding", "kubectl create role"} {
		if !strings.Contains(fe.Fix, want) {
			t.Errorf("Fix lacks %q:\n%s", want, fe.Fix)
		}
	}
	if strings.Contains(fe.Fix, "clusterrole=cluster-admin") || strings.Contains(fe.Fix, "name: cluster-admin") {
		t.Error("the fix suggests cluster-admin")
	}
	if strings.Contains(fe.Error(), "\n") {
		t.Errorf("Error() is not one line: %q", fe.Error())
	}
}

func TestManyElectionsShareOneWatch(t *testing.T) {
	w := newWorld(t)
	shared := elector.NewSharedWatch(w.leases.Leases(ns), ns, elector.SharedWatchOptions{Clock: w.clock})
	const n = 50
	var cands []*candidate
	for i := 0; i < n; i++ {
		name := "shard-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		c := w.start("p1", func(c *elector.Config) { c.Name = name; c.Watch = shared })
		cands = append(cands, c)
	}
	for _, c := range cands {
		wait(t, c.started, "every shard to be led")
	}
	if got := w.leases.Watchers(); got != 1 {
		t.Fatalf("open watches = %d for %d elections, want 1", got, n)
	}
	if got := w.count("p1", "get"); got != 0 {
		t.Fatalf("%d GETs, want 0 (the shared watch lists once)", got)
	}
}

func TestSubscribeDeliversCurrentStateThenChanges(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	wait(t, a.started, "a to lead")
	b := w.start("b", nil)
	follows(t, b, "a")
	ctx, cancel := context.WithCancel(context.Background())
	ch := b.e.Subscribe(ctx)
	if v := wait(t, ch, "the current state"); v.Identity != "a" || v.Self {
		t.Fatalf("first = %+v, want leader a", v)
	}
	a.cancel()
	for {
		if v := wait(t, ch, "b to lead"); v.Self {
			if v.Identity != "b" || v.Token != 1 {
				t.Fatalf("view = %+v, want b with token 1", v)
			}
			break
		}
	}
	cancel()
	for {
		if _, ok := testwait.RecvOK(t, ch, "the subscription to close"); !ok {
			break
		}
	}
}

func TestObserversNeverSeeSelfHoldingWithoutLeading(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := a.e.Subscribe(ctx)
	wait(t, a.started, "a to lead")
	for {
		v := wait(t, ch, "a's view")
		if v.Identity == "a" {
			if !v.Self {
				t.Fatalf("view %+v: a holds the Lease but is not reported as leading", v)
			}
			return
		}
	}
}

func TestSharedWatchBoundsConcurrentAcquisitions(t *testing.T) {
	w := newWorld(t)
	var mu sync.Mutex
	inFlight, most := 0, 0
	w.leases.SetReactor(func(ctx context.Context, verb, _, _ string) error {
		if verb != "create" {
			return nil
		}
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		runtime.Gosched()
		mu.Lock()
		inFlight--
		mu.Unlock()
		return nil
	})
	shared := elector.NewSharedWatch(w.leases.Leases(ns), ns, elector.SharedWatchOptions{Clock: w.clock, MaxConcurrentAcquires: 2})
	var cands []*candidate
	for i := range 20 {
		cands = append(cands, w.start("p1", func(c *elector.Config) {
			c.Name = fmt.Sprintf("shard-%d", i)
			c.Watch = shared
		}))
	}
	for _, c := range cands {
		wait(t, c.started, "every shard to be led")
	}
	if most > 2 {
		t.Fatalf("%d creates in flight at once, want at most 2", most)
	}
}
