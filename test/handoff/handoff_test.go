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

// Package handoff tests planned handoff (issue 13) against a real
// kube-apiserver and etcd, with the CoordinatedLeaderElection feature gate
// on (so that spec.preferredHolder is stored), and three library
// candidates authenticated as a real ServiceAccount. Each leader function
// holds an exclusive flock on a file shared by the candidates while it
// runs, as the exec-mode tests' lock holder does: two tenures that overlap
// by any amount are reported by the kernel, not by bookkeeping.
package handoff

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/internal/testwait"
	"github.com/elector-dev/elector/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunMainNoLeaksWithOptions(m, &cp, controlplane.Options{
		// spec.preferredHolder is dropped on write unless the gate is on.
		// The gate needs the LeaseCandidate API (coordination.k8s.io/v1beta1).
		APIServerArgs: []string{"--feature-gates=CoordinatedLeaderElection=true", "--runtime-config=coordination.k8s.io/v1beta1=true"},
	}))
}

// Short timings keep the suite fast; they satisfy the same rules as the
// defaults. StopGrace defaults to 750ms with them.
const (
	leaseDuration = 3 * time.Second
	renewDeadline = 2 * time.Second
	retryPeriod   = 500 * time.Millisecond
	guard         = testwait.DefaultTimeout // failure deadline for waits, not a timing assertion
)

var nsCounter atomic.Int32

// env is one test's namespace, a ServiceAccount with the Role elector
// documents for one Lease, and the flock overlap detector.
type env struct {
	t     *testing.T
	ns    string
	lease string
	admin *kubernetes.Clientset
	sa    *rest.Config // the candidates' ServiceAccount
	lock  string       // the file every leader function flocks

	mu         sync.Mutex
	violations []string
	gate       gate // holds one candidate's Lease updates on request
}

// gate holds the Lease updates of one candidate while armed, so that a
// test can change the Lease while that candidate's election loop waits.
type gate struct {
	mu      sync.Mutex
	id      string
	blocked chan struct{}
	open    chan struct{}
}

// arm holds id's next updates until release; blocked receives a value
// when one is held.
func (g *gate) arm(id string) (blocked <-chan struct{}, release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.id, g.blocked, g.open = id, make(chan struct{}, 1), make(chan struct{})
	open := g.open
	var once sync.Once
	return g.blocked, func() { once.Do(func() { close(open) }) }
}

func (g *gate) wait(ctx context.Context, id string) {
	g.mu.Lock()
	if g.id != id {
		g.mu.Unlock()
		return
	}
	blocked, open := g.blocked, g.open
	g.mu.Unlock()
	select {
	case blocked <- struct{}{}:
	default:
	}
	select {
	case <-open:
	case <-ctx.Done():
	}
}

// gatedLeases passes a candidate's updates through the env's gate.
type gatedLeases struct {
	elector.LeaseClient
	id string
	g  *gate
}

func (l gatedLeases) Update(ctx context.Context, lease *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	l.g.wait(ctx, l.id)
	return l.LeaseClient.Update(ctx, lease, opts)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := t.Context()
	admin, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		t: t, ns: fmt.Sprintf("handoff-%d", nsCounter.Add(1)), lease: "lock", admin: admin,
		lock: filepath.Join(t.TempDir(), "leader.lock"),
	}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if e.sa, err = cp.ServiceAccountConfig(ctx, e.ns, "candidate"); err != nil {
		t.Fatal(err)
	}
	var role rbacv1.Role
	if err := yaml.Unmarshal([]byte(rbac.Role(e.ns, "elector", rbac.LeaseRules(e.lease))), &role); err != nil {
		t.Fatal(err)
	}
	role.Namespace = e.ns
	if _, err := admin.RbacV1().Roles(e.ns).Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "candidate", Namespace: e.ns}},
	}
	if _, err := admin.RbacV1().RoleBindings(e.ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if len(e.violations) > 0 {
			t.Errorf("leader tenures overlapped: %v", e.violations)
		}
	})
	return e
}

// flock takes the leader lock without waiting; a held lock is an
// overlap. It returns the function that unlocks it.
func (e *env) flock(id string, token elector.Token) func() {
	f, err := os.OpenFile(e.lock, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		e.violate(fmt.Sprintf("%s: unable to open the lock file: %v", id, err))
		return func() {}
	}
	switch err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); {
	case errors.Is(err, syscall.EWOULDBLOCK):
		e.violate(fmt.Sprintf("%s (token %d) started while another leader held the lock", id, token))
	case err != nil:
		e.violate(fmt.Sprintf("%s: unable to lock: %v", id, err))
	}
	return func() { f.Close() } // closing drops the flock
}

func (e *env) violate(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.violations = append(e.violations, s)
}

func (e *env) checkNoOverlap() {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.violations) > 0 {
		e.t.Fatalf("leader tenures overlapped: %v", e.violations)
	}
}

func (e *env) getLease() *coordinationv1.Lease {
	e.t.Helper()
	l, err := e.admin.CoordinationV1().Leases(e.ns).Get(e.t.Context(), e.lease, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// request asks for a handoff as an operator (the admin) would.
func (e *env) request(to string) time.Time {
	e.t.Helper()
	sent := time.Now()
	if _, err := elector.RequestHandoff(e.t.Context(), e.admin.CoordinationV1().Leases(e.ns), e.lease, to); err != nil {
		e.t.Fatalf("RequestHandoff(%q): %v", to, err)
	}
	return sent
}

// tenure is one leader-function run.
type tenure struct {
	c     *candidate
	term  elector.Term
	start time.Time
}

// candidate is one elector whose leader function holds the flock.
type candidate struct {
	id     string
	el     *elector.Elector
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	// stopDelay is how long the function keeps the lock after its
	// context ends (work that stops slowly); hold makes it ignore its
	// context until release is closed.
	stopDelay time.Duration
	hold      atomic.Bool
	release   chan struct{}
	returned  chan struct{} // one per tenure, after the lock is dropped
}

func (e *env) start(id string, tenures chan<- tenure, mod func(*candidate)) *candidate {
	e.t.Helper()
	// A client of its own, as in a process of its own: client-go's
	// rate limiter (5 QPS, burst 10) is per client.
	client, err := coordinationv1client.NewForConfig(e.sa)
	if err != nil {
		e.t.Fatal(err)
	}
	el, err := elector.New(elector.Config{
		Leases: gatedLeases{LeaseClient: client.Leases(e.ns), id: id, g: &e.gate}, Namespace: e.ns, Name: e.lease, Identity: id,
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
		Logger: slog.New(slog.NewTextHandler(e.t.Output(), nil)).With("candidate", id),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &candidate{
		id: id, el: el, cancel: cancel, done: make(chan struct{}),
		release: make(chan struct{}), returned: make(chan struct{}, 16),
	}
	if mod != nil {
		mod(c)
	}
	go func() {
		defer close(c.done)
		c.err = el.Run(ctx, func(ctx context.Context, term elector.Term) error {
			unlock := e.flock(id, term.Token)
			tenures <- tenure{c: c, term: term, start: time.Now()}
			<-ctx.Done()
			if c.hold.Load() {
				<-c.release
			} else {
				time.Sleep(c.stopDelay)
			}
			unlock()
			c.returned <- struct{}{}
			return nil
		})
	}()
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-c.release:
		default:
			close(c.release)
		}
		wait(e.t, c.done, id+"'s Run to return")
	})
	return c
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	return testwait.Recv(t, ch, what)
}

// three starts a, b and c and returns them with the first tenure.
func (e *env) three(tenures chan tenure, mods map[string]func(*candidate)) (map[string]*candidate, tenure) {
	e.t.Helper()
	cs := map[string]*candidate{}
	for _, id := range []string{"a", "b", "c"} {
		cs[id] = e.start(id, tenures, mods[id])
	}
	first := wait(e.t, tenures, "a first leader")
	// Every candidate follows it before the test goes on.
	for _, c := range cs {
		follows(e.t, c, first.c.id)
	}
	return cs, first
}

func follows(t *testing.T, c *candidate, id string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := c.el.Subscribe(ctx)
	for {
		if v := wait(t, ch, c.id+" to see leader "+id); v.Identity == id {
			return
		}
	}
}

func other(cs map[string]*candidate, not string) string {
	for _, id := range []string{"a", "b", "c"} {
		if id != not {
			return id
		}
	}
	return ""
}

func TestHandoffToANamedTargetAmongThree(t *testing.T) {
	e := newEnv(t)
	tenures := make(chan tenure, 16)
	cs, cur := e.three(tenures, nil)
	for i := range 4 {
		// Hand to the next candidate in turn: a → b → c → a ...
		to := map[string]string{"a": "b", "b": "c", "c": "a"}[cur.c.id]
		sent := e.request(to)
		next := wait(t, tenures, "the target to lead")
		if next.c.id != to || next.term.Token != cur.term.Token+1 {
			t.Fatalf("handoff %d: %s leads with token %d, want %s with %d", i, next.c.id, next.term.Token, to, cur.term.Token+1)
		}
		t.Logf("handoff %d: %s → %s, request written → target's work started: %v", i, cur.c.id, to, next.start.Sub(sent))
		l := e.getLease()
		if m, current := elector.MarkerOf(l); !current || m.Identity != to || m.HandedBy != "" {
			t.Fatalf("handoff %d: marker %+v (current %v), want the target's own write", i, m, current)
		}
		if _, ok := l.Annotations[elector.AnnotationHandoffTo]; ok {
			t.Fatalf("handoff %d: the request is still on the Lease", i)
		}
		cur = next
	}
	// Everyone is still a candidate: no Run returned.
	for _, c := range cs {
		select {
		case <-c.done:
			t.Fatalf("%s's Run returned: %v", c.id, c.err)
		default:
		}
	}
	e.checkNoOverlap()
}

func TestHandoffToAnyoneElseAndToItself(t *testing.T) {
	e := newEnv(t)
	tenures := make(chan tenure, 16)
	_, cur := e.three(tenures, nil)
	for i, self := range []bool{false, true, false} {
		to := ""
		if self {
			to = cur.c.id // a request naming the leader itself
		}
		e.request(to)
		next := wait(t, tenures, "another candidate to lead")
		// The old leader stands aside for a lease duration: another one
		// takes the released Lease.
		if next.c.id == cur.c.id || next.term.Token != cur.term.Token+1 {
			t.Fatalf("round %d (to %q): %s leads with token %d after %s (token %d)", i, to, next.c.id, next.term.Token, cur.c.id, cur.term.Token)
		}
		cur = next
	}
	e.checkNoOverlap()
}

func TestHandoffToADeadTargetIsTakenAfterTheLeaseDuration(t *testing.T) {
	e := newEnv(t)
	tenures := make(chan tenure, 16)
	_, cur := e.three(tenures, nil)
	e.request("ghost")
	// The leader stops and hands the Lease to ghost, which never renews.
	var handed time.Time
	for deadline := time.Now().Add(guard); ; time.Sleep(10 * time.Millisecond) {
		if l := e.getLease(); ptr.Deref(l.Spec.HolderIdentity, "") == "ghost" {
			handed = time.Now()
			if got := ptr.Deref(l.Spec.LeaseTransitions, 0); got != int32(cur.term.Token)+1 {
				t.Fatalf("token handed to ghost = %d, want %d", got, cur.term.Token+1)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Lease was never handed to ghost")
		}
	}
	next := wait(t, tenures, "a candidate to take the Lease from ghost")
	// Candidates wait a lease duration from when they saw the transfer,
	// which the test saw after them (it polls): allow for the poll.
	if waited := next.start.Sub(handed); waited < leaseDuration-200*time.Millisecond {
		t.Fatalf("%s took the Lease %v after it was handed to ghost, before the lease duration (%v)", next.c.id, waited, leaseDuration)
	}
	if next.term.Token != cur.term.Token+2 {
		t.Fatalf("token after ghost = %d, want %d", next.term.Token, cur.term.Token+2)
	}
	e.checkNoOverlap()
}

// Work that takes a while to stop (within StopGrace) delays the transfer;
// work that ignores its context past StopGrace ends in ErrStopOverrun and
// the Lease is never handed on: the target takes it after it expires.
func TestHandoffWaitsForSlowWorkAndNeverTransfersOnOverrun(t *testing.T) {
	e := newEnv(t)
	tenures := make(chan tenure, 16)
	slow := func(c *candidate) { c.stopDelay = 500 * time.Millisecond } // StopGrace is 750ms
	cs, cur := e.three(tenures, map[string]func(*candidate){"a": slow, "b": slow, "c": slow})
	to := other(cs, cur.c.id)
	sent := e.request(to)
	next := wait(t, tenures, "the target to lead")
	if next.c.id != to || next.start.Sub(sent) < 500*time.Millisecond {
		t.Fatalf("%s led %v after the request, want %s after the old work stopped (500ms)", next.c.id, next.start.Sub(sent), to)
	}
	e.checkNoOverlap()

	// Now the leader's work ignores its context.
	again := next
	holder := cs[again.c.id]
	holder.hold.Store(true)
	e.request(other(cs, holder.id))
	wait(t, holder.done, holder.id+"'s Run to return")
	if !errors.Is(holder.err, elector.ErrStopOverrun) {
		t.Fatalf("%s: Run = %v, want ErrStopOverrun", holder.id, holder.err)
	}
	l := e.getLease()
	if got := ptr.Deref(l.Spec.HolderIdentity, ""); got != holder.id {
		t.Fatalf("holder after the overrun = %q, want %s: no transfer while the work runs", got, holder.id)
	}
	close(holder.release) // the process exits here, before its lease expires
	wait(t, holder.returned, holder.id+"'s work to stop")
	last := wait(t, tenures, "a candidate to take the expired Lease")
	if last.term.Token != again.term.Token+1 {
		t.Fatalf("token after the overrun = %d, want %d", last.term.Token, again.term.Token+1)
	}
	e.checkNoOverlap()
}

func TestConcurrentHandoffRequests(t *testing.T) {
	e := newEnv(t)
	tenures := make(chan tenure, 16)
	cs, cur := e.three(tenures, nil)
	var wg sync.WaitGroup
	for _, to := range []string{other(cs, cur.c.id), "", other(cs, other(cs, cur.c.id))} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Refusals are fine here: the Lease may be free for a moment.
			_, err := elector.RequestHandoff(t.Context(), e.admin.CoordinationV1().Leases(e.ns), e.lease, to)
			if err != nil && !errors.Is(err, elector.ErrNoHolder) {
				t.Errorf("RequestHandoff(%q): %v", to, err)
			}
		}()
	}
	testwait.Call(t, "the handoff requests to return", wg.Wait)
	// Tenures follow each other with growing tokens until no request is
	// left; then leadership stays put.
	token := cur.term.Token
	for {
		l := e.getLease()
		_, pending := elector.HandoffRequestOf(l)
		if !pending && ptr.Deref(l.Spec.HolderIdentity, "") != "" && elector.Token(ptr.Deref(l.Spec.LeaseTransitions, 0)) == token {
			break
		}
		next := wait(t, tenures, "the next tenure")
		if next.term.Token <= token {
			t.Fatalf("token %d after %d", next.term.Token, token)
		}
		token = next.term.Token
	}
	e.checkNoOverlap()
}

func TestPreferredHolderHandsOffWithTheGateOn(t *testing.T) {
	e := newEnv(t)
	tenures := make(chan tenure, 16)
	cs, cur := e.three(tenures, nil)
	to := other(cs, cur.c.id)
	leases := e.admin.CoordinationV1().Leases(e.ns)
	for {
		l := e.getLease()
		l.Spec.Strategy = ptr.To(coordinationv1.OldestEmulationVersion)
		l.Spec.PreferredHolder = ptr.To(to)
		got, err := leases.Update(t.Context(), l, metav1.UpdateOptions{})
		if err == nil {
			if ptr.Deref(got.Spec.PreferredHolder, "") != to {
				t.Fatal("the API server dropped spec.preferredHolder: is the CoordinatedLeaderElection gate on?")
			}
			break
		}
	}
	next := wait(t, tenures, "the preferred holder to lead")
	if next.c.id != to || next.term.Token != cur.term.Token+1 {
		t.Fatalf("%s leads with token %d, want %s with %d", next.c.id, next.term.Token, to, cur.term.Token+1)
	}
	// The preferred holder keeps leading.
	time.Sleep(3 * retryPeriod)
	select {
	case extra := <-tenures:
		t.Fatalf("%s led after the preferred holder", extra.c.id)
	default:
	}
	e.checkNoOverlap()
}

// A request written and removed while the leader's election loop is busy
// (here: in a renewal the test holds) is never acted on: the leader reads
// the Lease before acting on a request it saw late.
func TestHandoffRequestRemovedBeforeTheLeaderActs(t *testing.T) {
	e := newEnv(t)
	tenures := make(chan tenure, 16)
	cs, cur := e.three(tenures, nil)
	blocked, release := e.gate.arm(cur.c.id)
	wait(t, blocked, "the leader's renewal")
	e.request(other(cs, cur.c.id))
	leases := e.admin.CoordinationV1().Leases(e.ns)
	for {
		l := e.getLease()
		delete(l.Annotations, elector.AnnotationHandoffTo)
		delete(l.Annotations, elector.AnnotationHandoffRequestedAt)
		if _, err := leases.Update(t.Context(), l, metav1.UpdateOptions{}); err == nil {
			break
		}
	}
	release()
	e.gate.arm("") // nobody's updates are held any more
	// A few renewals later, the same tenure goes on.
	time.Sleep(4 * retryPeriod)
	select {
	case next := <-tenures:
		t.Fatalf("%s led (token %d) after a request that was removed", next.c.id, next.term.Token)
	default:
	}
	l := e.getLease()
	if ptr.Deref(l.Spec.HolderIdentity, "") != cur.c.id || elector.Token(ptr.Deref(l.Spec.LeaseTransitions, 0)) != cur.term.Token {
		t.Fatalf("Lease = holder %q token %d, want %s with %d", ptr.Deref(l.Spec.HolderIdentity, ""), ptr.Deref(l.Spec.LeaseTransitions, 0), cur.c.id, cur.term.Token)
	}
	e.checkNoOverlap()
}
