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
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/testwait"
)

// worker is a candidate for handoff tests: its leader function may run
// in several tenures of one Run, and records each.
type worker struct {
	id      string
	e       *elector.Elector
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
	started chan elector.Term // one per tenure
	// causes receives the cause of each tenure's cancellation.
	causes chan error
	// hold, when set, makes the function ignore its context until the
	// test sends on release (one per tenure).
	hold    bool
	release chan struct{}
	left    chan struct{} // one per tenure, once the function stopped acting
	// atStart is the Lease as read when the function started.
	mu      sync.Mutex
	atStart []*coordinationv1.Lease
}

func (w *world) worker(id string, hold bool, mod func(*elector.Config)) *worker {
	w.t.Helper()
	cfg := w.config(id)
	if mod != nil {
		mod(&cfg)
	}
	e, err := elector.New(cfg)
	if err != nil {
		w.t.Fatalf("New: %v", err)
	}
	c := &worker{
		id: id, e: e, done: make(chan struct{}), started: make(chan elector.Term, 10),
		causes: make(chan error, 10), hold: hold, release: make(chan struct{}, 10), left: make(chan struct{}, 10),
	}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), idKey{}, id))
	c.cancel = cancel
	go func() {
		defer close(c.done)
		c.err = e.Run(ctx, func(ctx context.Context, term elector.Term) error {
			w.enter(id)
			l, _ := w.leases.Leases(ns).Get(context.Background(), lease, metav1.GetOptions{})
			c.mu.Lock()
			c.atStart = append(c.atStart, l)
			c.mu.Unlock()
			c.started <- term
			<-ctx.Done()
			c.causes <- context.Cause(ctx)
			if c.hold {
				<-c.release
			}
			w.leave(id)
			c.left <- struct{}{}
			return nil
		})
	}()
	w.t.Cleanup(func() {
		cancel()
		for range 10 {
			select {
			case c.release <- struct{}{}:
			default:
			}
		}
		select {
		case <-c.done:
		case <-time.After(guard):
			w.t.Errorf("%s: Run did not return after cancel", id)
		}
	})
	return c
}

// request writes a handoff request as an operator would.
func (w *world) request(to string) {
	w.t.Helper()
	if _, err := elector.RequestHandoff(context.Background(), w.leases.Leases(ns), lease, to); err != nil {
		w.t.Fatalf("RequestHandoff(%q): %v", to, err)
	}
}

// edit changes the Lease as an operator would (no candidate identity).
func (w *world) edit(f func(l *coordinationv1.Lease)) {
	w.t.Helper()
	for {
		l := w.get()
		f(l)
		_, err := w.leases.Leases(ns).Update(context.Background(), l, metav1.UpdateOptions{})
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			w.t.Fatal(err)
		}
	}
}

// blockUpdates makes id's updates wait until unblock is called; entered
// receives one value per blocked update. It keeps the world's counting.
func (w *world) blockUpdates(id string) (entered <-chan struct{}, unblock func()) {
	in := make(chan struct{}, 10)
	gate := make(chan struct{})
	w.leases.SetReactor(func(ctx context.Context, verb, _, _ string) error {
		who, _ := ctx.Value(idKey{}).(string)
		w.mu.Lock()
		if w.requests[who] == nil {
			w.requests[who] = map[string]int{}
		}
		w.requests[who][verb]++
		w.mu.Unlock()
		if verb == "update" {
			select {
			case w.updates <- who:
			default:
			}
			if who == id {
				in <- struct{}{}
				select {
				case <-gate:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		return nil
	})
	var once sync.Once
	return in, func() { once.Do(func() { close(gate) }) }
}

func holder(l *coordinationv1.Lease) string { return ptr.Deref(l.Spec.HolderIdentity, "") }

func transitions(l *coordinationv1.Lease) int32 { return ptr.Deref(l.Spec.LeaseTransitions, 0) }

// eventLog is an elector.EventRecorder for tests.
type eventLog struct {
	mu  sync.Mutex
	got []string
}

func (l *eventLog) Event(reason, message string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, reason+": "+message)
}

func (l *eventLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

func TestHandoffToANamedTarget(t *testing.T) {
	w := newWorld(t)
	reg := prometheus.NewRegistry()
	events := &eventLog{}
	a := w.worker("a", false, func(c *elector.Config) { c.Registerer, c.Events = reg, events })
	wait(t, a.started, "a to lead")
	b := w.worker("b", false, nil)
	c := w.worker("c", false, nil)
	follows(t, &candidate{id: "b", e: b.e}, "a")
	follows(t, &candidate{id: "c", e: c.e}, "a")

	if err := c.e.Handoff(context.Background(), "b"); err != nil {
		t.Fatal(err)
	}
	if cause := wait(t, a.causes, "a's work to be cancelled"); !errors.Is(cause, elector.ErrHandedOff) {
		t.Fatalf("cause of a's cancellation = %v, want ErrHandedOff", cause)
	}
	term := wait(t, b.started, "b to lead") // the fake clock never moved
	if term.Token != 1 || term.Identity != "b" {
		t.Fatalf("b's term = %+v, want token 1", term)
	}
	if w.clock.Now() != epoch {
		t.Fatal("the clock moved")
	}
	// The target wrote the Lease itself before its work started.
	b.mu.Lock()
	atStart := b.atStart[0]
	b.mu.Unlock()
	m, current := elector.MarkerOf(atStart)
	if !current || m.Identity != "b" || m.Token != 1 || m.HandedBy != "" || !m.Handoff {
		t.Fatalf("marker when b's work started = %+v (current %v), want b's own write with token 1", m, current)
	}
	if _, ok := atStart.Annotations[elector.AnnotationHandoffTo]; ok {
		t.Fatal("the request is still on the Lease after the handoff")
	}
	if holder(atStart) != "b" || transitions(atStart) != 1 {
		t.Fatalf("Lease = holder %q token %d, want b with 1", holder(atStart), transitions(atStart))
	}
	// a is a follower again: its Run goes on.
	follows(t, &candidate{id: "a", e: a.e}, "b")
	select {
	case <-a.done:
		t.Fatalf("a's Run returned after the handoff: %v", a.err)
	default:
	}
	if got := counterValue(t, reg, "elector_handoffs_total"); got != 1 {
		t.Fatalf("elector_handoffs_total = %v, want 1", got)
	}
	if got := events.all(); len(got) != 2 || got[0] != "BecameLeader: a became leader (token 0)" || got[1] != "HandedOff: a handed off to b (token 1)" {
		t.Fatalf("events = %q", got)
	}
	select {
	case term := <-c.started:
		t.Fatalf("c led too: %+v", term)
	default:
	}
	w.checkNoOverlap()
}

func TestHandoffWaitsForTheWorkToReturnAndKeepsRenewing(t *testing.T) {
	w := newWorld(t)
	// Renewals every second, so that one falls within StopGrace (2s).
	a := w.worker("a", true, func(c *elector.Config) { c.RetryPeriod = time.Second })
	wait(t, a.started, "a to lead")
	b := w.worker("b", false, nil)
	follows(t, &candidate{id: "b", e: b.e}, "a")

	w.request("b")
	wait(t, a.causes, "a's work to be cancelled")
	// The request is pending on every view.
	if l := w.get(); holder(l) != "a" {
		t.Fatalf("holder = %q while a's work still runs, want a", holder(l))
	}
	pending := func(e *elector.Elector, who string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch := e.Subscribe(ctx)
		for {
			if v := wait(t, ch, who+" to see the pending request"); v.Handoff != nil && v.Handoff.To == "b" {
				return
			}
		}
	}
	pending(a.e, "a")
	pending(b.e, "b")
	// Still renewing while the work stops (within StopGrace).
	before := w.count("a", "update")
	w.clock.Step(time.Second)
	w.updateBy("a")
	if w.count("a", "update") == before {
		t.Fatal("a did not renew while its work stopped")
	}
	if l := w.get(); holder(l) != "a" || transitions(l) != 0 {
		t.Fatalf("Lease = holder %q token %d while a's work still runs, want a with 0", holder(l), transitions(l))
	}
	a.release <- struct{}{}
	if term := wait(t, b.started, "b to lead"); term.Token != 1 {
		t.Fatalf("b's token = %d, want 1", term.Token)
	}
	w.checkNoOverlap()
}

func TestHandoffToWorkThatIgnoresItsContextEndsInAnOverrun(t *testing.T) {
	w := newWorld(t)
	overdue := make(chan struct{}, 1)
	a := w.worker("a", true, func(c *elector.Config) {
		c.RetryPeriod = 3 * time.Second // no renewal due at StopGrace (2s)
		c.Logger = slog.New(&signalHandler{Handler: c.Logger.Handler(), msg: "Leader work has not stopped within StopGrace of a handoff request; renewals stop", ch: overdue})
	})
	wait(t, a.started, "a to lead")
	b := w.worker("b", false, nil)
	follows(t, &candidate{id: "b", e: b.e}, "a")

	w.request("b")
	wait(t, a.causes, "a's work to be cancelled")
	renewals := w.count("a", "update")
	// StopGrace passes: renewals stop. The renew deadline passes: Run
	// reports the overrun, and the Lease was never handed on.
	w.clock.Step(elector.DefaultStopGrace)
	wait(t, overdue, "a to give up renewing")
	w.clock.Step(elector.DefaultRenewDeadline - elector.DefaultStopGrace)
	wait(t, a.done, "a's Run to return")
	if !errors.Is(a.err, elector.ErrStopOverrun) {
		t.Fatalf("a's Run = %v, want ErrStopOverrun", a.err)
	}
	if got := w.count("a", "update") - renewals; got > 0 {
		t.Fatalf("a renewed %d times after StopGrace passed", got)
	}
	l := w.get()
	if holder(l) != "a" || l.Annotations[elector.AnnotationHandoffTo] != "b" {
		t.Fatalf("Lease = holder %q, request %q; want a's, with the request pending", holder(l), l.Annotations[elector.AnnotationHandoffTo])
	}
	select {
	case <-b.started:
		t.Fatal("b led before a's lease expired")
	default:
	}
	a.release <- struct{}{} // the process would exit here
	wait(t, a.left, "a's work to stop")
	// b takes the Lease once it expired on b's clock, with a new token,
	// and the request is fulfilled.
	w.clock.Step(elector.DefaultLeaseDuration)
	if term := wait(t, b.started, "b to lead"); term.Token != 1 {
		t.Fatalf("b's token = %d, want 1", term.Token)
	}
	if l := w.get(); l.Annotations[elector.AnnotationHandoffTo] != "" || holder(l) != "b" {
		t.Fatalf("Lease = holder %q, annotations %v; want b, no request", holder(l), l.Annotations)
	}
	w.checkNoOverlap()
}

func TestHandoffToAnyoneElseReleasesAndStandsAside(t *testing.T) {
	for _, to := range []string{"", "a"} { // "a": a request naming the leader itself
		t.Run(fmt.Sprintf("to=%q", to), func(t *testing.T) {
			w := newWorld(t)
			events := &eventLog{}
			a := w.worker("a", false, func(c *elector.Config) { c.Events = events })
			wait(t, a.started, "a to lead")

			w.request(to)
			wait(t, a.causes, "a's work to be cancelled")
			follows(t, &candidate{id: "a", e: a.e}, "")
			l := w.get()
			if holder(l) != "" || transitions(l) != 0 || l.Annotations[elector.AnnotationHandoffTo] != "" {
				t.Fatalf("Lease = holder %q token %d annotations %v, want released, no request", holder(l), transitions(l), l.Annotations)
			}
			// a stands aside: a newcomer takes the free Lease at once; a
			// leader that took it back at once would keep b out.
			w.clock.Step(elector.DefaultLeaseDuration - time.Second)
			b := w.worker("b", false, nil)
			if term := wait(t, b.started, "b to lead"); term.Token != 1 {
				t.Fatalf("b's token = %d, want 1", term.Token)
			}
			select {
			case term := <-a.started:
				t.Fatalf("a led again while standing aside: %+v", term)
			default:
			}
			if got := events.all(); len(got) != 2 || got[1] != "HandedOff: a released the lease to anyone else (token 0)" {
				t.Fatalf("events = %q", got)
			}
			w.checkNoOverlap()
		})
	}
}

func TestHandoffWithNoOtherCandidateComesBackAfterTheLeaseDuration(t *testing.T) {
	w := newWorld(t)
	a := w.worker("a", false, nil)
	wait(t, a.started, "a to lead")
	w.request("")
	wait(t, a.causes, "a's work to be cancelled")
	follows(t, &candidate{id: "a", e: a.e}, "")
	w.clock.Step(elector.DefaultLeaseDuration - time.Millisecond)
	if l := w.get(); holder(l) != "" {
		t.Fatalf("holder = %q while a stands aside, want none", holder(l))
	}
	w.clock.Step(time.Millisecond)
	if term := wait(t, a.started, "a to lead again"); term.Token != 1 {
		t.Fatalf("a's new token = %d, want 1", term.Token)
	}
}

func TestHandoffToADeadTargetIsTakenAfterTheLeaseDuration(t *testing.T) {
	w := newWorld(t)
	a := w.worker("a", false, nil)
	wait(t, a.started, "a to lead")
	c := w.worker("c", false, nil)
	follows(t, &candidate{id: "c", e: c.e}, "a")

	w.request("ghost")
	wait(t, a.causes, "a's work to be cancelled")
	follows(t, &candidate{id: "c", e: c.e}, "ghost")
	l := w.get()
	m, current := elector.MarkerOf(l)
	if holder(l) != "ghost" || transitions(l) != 1 || !current || m.HandedBy != "a" {
		t.Fatalf("Lease = holder %q token %d marker %+v, want handed to ghost with token 1", holder(l), transitions(l), m)
	}
	w.clock.Step(elector.DefaultLeaseDuration - time.Millisecond)
	if l := w.get(); holder(l) != "ghost" {
		t.Fatalf("holder = %q before the lease duration passed, want ghost", holder(l))
	}
	w.clock.Step(time.Millisecond)
	var term elector.Term
	select {
	case term = <-a.started:
	case term = <-c.started:
	case <-time.After(guard):
		t.Fatal("nobody took the Lease after the lease duration")
	}
	if term.Token != 2 {
		t.Fatalf("token after the dead target = %d, want 2", term.Token)
	}
	w.checkNoOverlap()
}

func TestHandoffRequestRemovedBeforeTheLeaderSeesIt(t *testing.T) {
	w := newWorld(t)
	a := w.worker("a", false, nil)
	wait(t, a.started, "a to lead")
	b := w.worker("b", false, nil)
	follows(t, &candidate{id: "b", e: b.e}, "a")

	// a's loop is busy in a renewal while the request comes and goes.
	entered, unblock := w.blockUpdates("a")
	w.clock.Step(elector.DefaultRetryPeriod)
	wait(t, entered, "a's renewal")
	w.request("b")
	w.edit(func(l *coordinationv1.Lease) {
		delete(l.Annotations, elector.AnnotationHandoffTo)
		delete(l.Annotations, elector.AnnotationHandoffRequestedAt)
	})
	unblock()
	// a's renewal conflicts, a reads the Lease, renews again, and keeps
	// leading; so it does at the next renewals.
	for range 3 {
		w.clock.Step(elector.DefaultRetryPeriod)
		w.updateBy("a")
	}
	select {
	case cause := <-a.causes:
		t.Fatalf("a's work was cancelled: %v", cause)
	default:
	}
	if l := w.get(); holder(l) != "a" || transitions(l) != 0 {
		t.Fatalf("Lease = holder %q token %d, want a with 0", holder(l), transitions(l))
	}
	w.checkNoOverlap()
}

func TestConcurrentHandoffRequestsTheLastOneDecides(t *testing.T) {
	w := newWorld(t)
	a := w.worker("a", true, nil)
	wait(t, a.started, "a to lead")
	b := w.worker("b", false, nil)
	c := w.worker("c", false, nil)
	follows(t, &candidate{id: "b", e: b.e}, "a")
	follows(t, &candidate{id: "c", e: c.e}, "a")

	w.request("b")
	wait(t, a.causes, "a's work to be cancelled")
	// A second request while a's work stops, then a third.
	w.request("")
	w.request("c")
	a.release <- struct{}{}
	if term := wait(t, c.started, "c to lead"); term.Token != 1 {
		t.Fatalf("c's token = %d, want 1", term.Token)
	}
	select {
	case term := <-b.started:
		t.Fatalf("b led too: %+v", term)
	default:
	}
	if l := w.get(); l.Annotations[elector.AnnotationHandoffTo] != "" {
		t.Fatalf("annotations after the handoff: %v", l.Annotations)
	}
	w.checkNoOverlap()
}

func TestHandoffBackAndForth(t *testing.T) {
	w := newWorld(t)
	a := w.worker("a", false, nil)
	wait(t, a.started, "a to lead")
	b := w.worker("b", false, nil)
	follows(t, &candidate{id: "b", e: b.e}, "a")
	for i, to := range []*worker{b, a, b, a} {
		w.request(to.id)
		if term := wait(t, to.started, to.id+" to lead"); term.Token != elector.Token(i+1) {
			t.Fatalf("handoff %d: %s's token = %d, want %d", i+1, to.id, term.Token, i+1)
		}
	}
	w.checkNoOverlap()
}

func TestPreferredHolderIsAHandoffRequest(t *testing.T) {
	w := newWorld(t)
	a := w.worker("a", false, nil)
	wait(t, a.started, "a to lead")
	b := w.worker("b", false, nil)
	follows(t, &candidate{id: "b", e: b.e}, "a")

	w.edit(func(l *coordinationv1.Lease) {
		l.Spec.Strategy = ptr.To(coordinationv1.OldestEmulationVersion)
		l.Spec.PreferredHolder = ptr.To("b")
	})
	if cause := wait(t, a.causes, "a's work to be cancelled"); !errors.Is(cause, elector.ErrHandedOff) {
		t.Fatalf("cause = %v, want ErrHandedOff", cause)
	}
	if term := wait(t, b.started, "b to lead"); term.Token != 1 {
		t.Fatalf("b's token = %d, want 1", term.Token)
	}
	// b is the preferred holder: it keeps leading through renewals.
	for range 3 {
		w.clock.Step(elector.DefaultRetryPeriod)
		w.updateBy("b")
	}
	select {
	case cause := <-b.causes:
		t.Fatalf("b's work was cancelled: %v", cause)
	default:
	}
	// The transfer fulfilled the request: preferredHolder is cleared (a
	// Coordinated client-go holder would treat it as the end of its term).
	if l := w.get(); holder(l) != "b" || ptr.Deref(l.Spec.PreferredHolder, "") != "" {
		t.Fatalf("Lease = holder %q preferred %q, want holder b and no preferredHolder", holder(l), ptr.Deref(l.Spec.PreferredHolder, ""))
	}
	w.checkNoOverlap()
}

func TestEveryWriteCarriesACurrentMarker(t *testing.T) {
	w := newWorld(t)
	a := w.worker("a", false, func(c *elector.Config) { c.Version = "v9.9.9" })
	wait(t, a.started, "a to lead")
	check := func(when string) {
		t.Helper()
		l := w.get()
		m, current := elector.MarkerOf(l)
		if !current || !m.Handoff || m.Version != "v9.9.9" {
			t.Fatalf("%s: marker = %+v, current %v", when, m, current)
		}
	}
	check("after acquiring")
	w.clock.Step(elector.DefaultRetryPeriod)
	w.updateBy("a")
	check("after renewing")
	a.cancel()
	wait(t, a.done, "a's Run to return")
	check("after releasing")
}

func TestRequestHandoffRefusesHoldersThatCannotHandOff(t *testing.T) {
	w := newWorld(t)
	leases := w.leases.Leases(ns)
	now := metav1.NewMicroTime(epoch)
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: lease, Namespace: ns},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(""), LeaseDurationSeconds: ptr.To[int32](15), RenewTime: &now},
	}
	if _, err := leases.Create(context.Background(), l, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := elector.RequestHandoff(context.Background(), leases, lease, ""); !errors.Is(err, elector.ErrNoHolder) {
		t.Fatalf("free Lease: err = %v, want ErrNoHolder", err)
	}
	// A client-go holder keeps the metadata it read: an old marker of
	// another holder is stale.
	w.edit(func(l *coordinationv1.Lease) {
		l.Spec.HolderIdentity = ptr.To("client-go-pod")
		l.Spec.LeaseTransitions = ptr.To[int32](4)
		l.Annotations = map[string]string{elector.AnnotationHolder: `{"identity":"a","token":3,"handoff":true}`}
	})
	if _, err := elector.RequestHandoff(context.Background(), leases, lease, ""); !errors.Is(err, elector.ErrHolderCannotHandOff) {
		t.Fatalf("client-go holder: err = %v, want ErrHolderCannotHandOff", err)
	}
	if l := w.get(); l.Annotations[elector.AnnotationHandoffTo] != "" {
		t.Fatal("a request was written for a holder that cannot hand off")
	}
}

// signalHandler sends on ch when a record with message msg is logged.
type signalHandler struct {
	slog.Handler
	msg string
	ch  chan struct{}
}

func (h *signalHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h *signalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &signalHandler{Handler: h.Handler.WithAttrs(attrs), msg: h.msg, ch: h.ch}
}

func (h *signalHandler) WithGroup(name string) slog.Handler {
	return &signalHandler{Handler: h.Handler.WithGroup(name), msg: h.msg, ch: h.ch}
}

// heldLeases is a candidate's Lease API whose watch events the test can
// hold back and let through one by one: a lagging watch, made to order.
// queued, sent and gets receive a value per event held back, per event
// delivered and per GET; watching one per watch opened.
type heldLeases struct {
	elector.LeaseClient
	mu     sync.Mutex
	held   bool
	allow  int // events that may pass while held
	queue  []watch.Event
	kick   chan struct{}
	queued chan struct{}
	sent   chan struct{}
	gets   chan struct{}
	// watching receives a value when a watch has been opened.
	watching chan struct{}
	// sentRV is the resourceVersion of the last event delivered.
	sentRV string
}

func newHeldLeases(inner elector.LeaseClient) *heldLeases {
	return &heldLeases{
		LeaseClient: inner, kick: make(chan struct{}, 1),
		queued: make(chan struct{}, 100), sent: make(chan struct{}, 100), gets: make(chan struct{}, 100),
		watching: make(chan struct{}, 100),
	}
}

func (h *heldLeases) Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error) {
	notify(h.gets)
	return h.LeaseClient.Get(ctx, name, opts)
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func drain(ch chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func (h *heldLeases) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	w, err := h.LeaseClient.Watch(ctx, opts)
	if err != nil {
		return nil, err
	}
	hw := &heldWatch{inner: w, out: make(chan watch.Event), done: make(chan struct{})}
	defer notify(h.watching)
	go func() {
		defer close(hw.out)
		for {
			h.mu.Lock()
			var send chan watch.Event
			var ev watch.Event
			if len(h.queue) > 0 && (!h.held || h.allow > 0) {
				send, ev = hw.out, h.queue[0]
			}
			h.mu.Unlock()
			select {
			case <-hw.done:
				return
			case send <- ev:
				h.mu.Lock()
				h.queue = h.queue[1:]
				if h.held {
					h.allow--
				}
				if l, ok := ev.Object.(*coordinationv1.Lease); ok {
					h.sentRV = l.ResourceVersion
				}
				h.mu.Unlock()
				notify(h.sent)
			case e, ok := <-w.ResultChan():
				if !ok {
					return
				}
				h.mu.Lock()
				h.queue = append(h.queue, e)
				h.mu.Unlock()
				notify(h.queued)
			case <-h.kick:
			}
		}
	}()
	return hw, nil
}

// caughtUp reports whether the watch has delivered every event it
// received, the last one of version rv.
func (h *heldLeases) caughtUp(rv string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.queue) == 0 && h.sentRV == rv
}

// hold makes the watch keep new events back.
func (h *heldLeases) hold() {
	h.mu.Lock()
	h.held, h.allow = true, 0
	h.mu.Unlock()
	drain(h.queued)
	drain(h.sent)
	drain(h.gets)
}

// let lets n more held-back events through.
func (h *heldLeases) let(n int) {
	h.mu.Lock()
	h.allow += n
	h.mu.Unlock()
	notify(h.kick)
}

func (h *heldLeases) releaseAll() {
	h.mu.Lock()
	h.held = false
	h.mu.Unlock()
	notify(h.kick)
}

type heldWatch struct {
	inner watch.Interface
	out   chan watch.Event
	once  sync.Once
	done  chan struct{}
}

func (w *heldWatch) Stop() {
	w.once.Do(func() {
		close(w.done)
		w.inner.Stop()
	})
}

func (w *heldWatch) ResultChan() <-chan watch.Event { return w.out }

// A request that the leader's lagging watch delivers after it was removed
// from the Lease is not acted on: the leader confirms a request with a
// consistent read before it acts.
func TestStaleHandoffRequestFromALaggingWatchIsNotActedOn(t *testing.T) {
	w := newWorld(t)
	held := newHeldLeases(w.leases.Leases(ns))
	a := w.worker("a", false, func(c *elector.Config) { c.Leases = held })
	wait(t, a.started, "a to lead")
	// a may lead before its watch is open (its first read found no
	// Lease): a watch opened after the edits below would show only
	// their result, and the events this test holds back would never come.
	wait(t, held.watching, "a's watch to be open")
	b := w.worker("b", false, nil)
	follows(t, &candidate{id: "b", e: b.e}, "a")
	// Nothing of the Lease's past may be still in flight when the watch
	// starts holding back: the first event let through must be the
	// request's.
	rv := w.get().ResourceVersion
	testwait.Until(t, "a's watch to deliver the Lease as it is", func() bool { return held.caughtUp(rv) })

	held.hold()
	w.request("b")
	w.edit(func(l *coordinationv1.Lease) {
		delete(l.Annotations, elector.AnnotationHandoffTo)
		delete(l.Annotations, elector.AnnotationHandoffRequestedAt)
	})
	wait(t, held.queued, "the request's event")
	wait(t, held.queued, "the removal's event")
	held.let(1) // a sees the request; the removal is still held back
	wait(t, held.sent, "the request's event to reach a")
	wait(t, held.gets, "a to read the Lease before acting on the request")
	held.releaseAll()
	for range 3 {
		w.clock.Step(elector.DefaultRetryPeriod)
		w.updateBy("a")
	}
	select {
	case cause := <-a.causes:
		t.Fatalf("a's work was cancelled for a removed request: %v", cause)
	default:
	}
	if l := w.get(); holder(l) != "a" || transitions(l) != 0 {
		t.Fatalf("Lease = holder %q token %d, want a with 0", holder(l), transitions(l))
	}
	w.checkNoOverlap()
}
