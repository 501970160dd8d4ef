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

// Package election tests the elector library against a real kube-apiserver
// and etcd, with candidates authenticated as real ServiceAccounts.
package election

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	os.Exit(controlplane.RunMainNoLeaks(m, &cp))
}

// Short timings keep the suite fast; they satisfy the same rules as the
// defaults (lease > renew > 1.2 × retry).
const (
	leaseDuration = 3 * time.Second
	renewDeadline = 2 * time.Second
	retryPeriod   = 500 * time.Millisecond
	guard         = testwait.DefaultTimeout // failure deadline for waits, not a timing assertion
)

var nsCounter atomic.Int32

// env is one test's namespace with a ServiceAccount that holds exactly the
// permissions elector documents for one Lease.
type env struct {
	t      *testing.T
	ns     string
	lease  string
	admin  *kubernetes.Clientset
	sa     *rest.Config
	mu     sync.Mutex
	acting map[string]time.Time
	events []string // overlap reports
}

func newEnv(t *testing.T, grant bool) *env {
	t.Helper()
	ctx := t.Context()
	admin, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ns: fmt.Sprintf("election-%d", nsCounter.Add(1)), lease: "lock", admin: admin, acting: map[string]time.Time{}}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.sa, err = cp.ServiceAccountConfig(ctx, e.ns, "candidate")
	if err != nil {
		t.Fatal(err)
	}
	if grant {
		e.applyRole(rbac.Role(e.ns, "elector", rbac.LeaseRules(e.lease)))
	}
	return e
}

// applyRole creates the Role given as YAML and binds it to the
// ServiceAccount, then waits until the grant is visible.
func (e *env) applyRole(roleYAML string) {
	e.t.Helper()
	ctx := e.t.Context()
	var role rbacv1.Role
	if err := yaml.Unmarshal([]byte(roleYAML), &role); err != nil {
		e.t.Fatalf("unable to parse the Role:\n%s\n%v", roleYAML, err)
	}
	role.Namespace = e.ns
	if _, err := e.admin.RbacV1().Roles(e.ns).Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "candidate", Namespace: e.ns}},
	}
	if _, err := e.admin.RbacV1().RoleBindings(e.ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) client() coordinationv1client.LeasesGetter {
	e.t.Helper()
	c, err := coordinationv1client.NewForConfig(e.sa)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) enter(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for other := range e.acting {
		e.events = append(e.events, fmt.Sprintf("%s started while %s acted", id, other))
	}
	e.acting[id] = time.Now()
}

func (e *env) leave(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.acting, id)
}

func (e *env) checkNoOverlap() {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.events) > 0 {
		e.t.Fatalf("leader tenures overlapped: %v", e.events)
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

// candidate is one elector whose leader function records its tenure.
type candidate struct {
	id      string
	el      *elector.Elector
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
	started chan elector.Term
	stopped chan time.Time
}

func (e *env) start(id string, mod func(*elector.Config)) *candidate {
	e.t.Helper()
	cfg := elector.Config{
		Leases: e.client().Leases(e.ns), Namespace: e.ns, Name: e.lease, Identity: id,
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
		Logger: slog.New(slog.NewTextHandler(e.t.Output(), nil)).With("candidate", id),
	}
	if mod != nil {
		mod(&cfg)
	}
	el, err := elector.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &candidate{
		id: id, el: el, cancel: cancel, done: make(chan struct{}),
		started: make(chan elector.Term, 1), stopped: make(chan time.Time, 1),
	}
	go func() {
		defer close(c.done)
		c.err = el.Run(ctx, func(ctx context.Context, term elector.Term) error {
			e.enter(id)
			c.started <- term
			<-ctx.Done()
			e.leave(id)
			c.stopped <- time.Now()
			return nil
		})
	}()
	e.t.Cleanup(func() {
		cancel()
		wait(e.t, c.done, id+" to return")
	})
	return c
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	return testwait.Recv(t, ch, what)
}

func (c *candidate) result(t *testing.T) error {
	t.Helper()
	wait(t, c.done, c.id+"'s Run to return")
	return c.err
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

// firstStarted waits for whichever candidate leads next.
func firstStarted(t *testing.T, cs ...*candidate) (*candidate, elector.Term) {
	t.Helper()
	deadline := time.After(guard)
	for {
		for _, c := range cs {
			select {
			case term := <-c.started:
				return c, term
			default:
			}
		}
		select {
		case <-deadline:
			t.Fatal("timed out waiting for a leader")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func TestExactlyOneLeaderAmongThreeAndGracefulHandoffs(t *testing.T) {
	e := newEnv(t, true)
	cands := []*candidate{e.start("a", nil), e.start("b", nil), e.start("c", nil)}
	leader, term := firstStarted(t, cands...)
	var rest []*candidate
	for _, c := range cands {
		if c != leader {
			rest = append(rest, c)
			follows(t, c, leader.id)
		}
	}
	for i := 0; i < 2; i++ {
		stoppedAt := time.Now()
		leader.cancel()
		if err := leader.result(t); err != nil {
			t.Fatalf("%s: Run = %v, want nil after cancel", leader.id, err)
		}
		next, nextTerm := firstStarted(t, rest...)
		t.Logf("handoff %s -> %s took %v", leader.id, next.id, time.Since(stoppedAt).Round(time.Millisecond))
		if nextTerm.Token <= term.Token {
			t.Fatalf("token %d after %d: fencing tokens must grow", nextTerm.Token, term.Token)
		}
		var others []*candidate
		for _, c := range rest {
			if c != next {
				others = append(others, c)
			}
		}
		leader, term, rest = next, nextTerm, others
	}
	if got := *e.getLease().Spec.LeaseTransitions; elector.Token(got) != term.Token {
		t.Fatalf("leaseTransitions = %d, want the last token %d", got, term.Token)
	}
	e.checkNoOverlap()
}

func TestVanishedLeaderIsTakenOverOnlyAfterItsLeaseExpires(t *testing.T) {
	e := newEnv(t, true)
	// KeepLease makes a cancelled leader leave the Lease held, as a
	// crashed process would.
	a := e.start("a", func(c *elector.Config) { c.KeepLease = true })
	wait(t, a.started, "a to lead")
	b := e.start("b", nil)
	follows(t, b, "a")

	a.cancel()
	aStopped := wait(t, a.stopped, "a to stop")
	wait(t, b.started, "b to take over")
	took := time.Since(aStopped)
	t.Logf("takeover %v after the leader vanished (lease %v)", took.Round(time.Millisecond), leaseDuration)
	// a renewed at most one retry period before it vanished, and b may
	// act only a full lease after it saw that renewal.
	if min := leaseDuration - retryPeriod; time.Since(aStopped) < min {
		t.Fatalf("b took over %v after a vanished, before the lease could expire (%v)", took, min)
	}
	e.checkNoOverlap()
}

func TestLeaseDeletedByHandWhileLeading(t *testing.T) {
	e := newEnv(t, true)
	a := e.start("a", nil)
	wait(t, a.started, "a to lead")
	b := e.start("b", nil)
	follows(t, b, "a")

	deleted := time.Now()
	if err := e.admin.CoordinationV1().Leases(e.ns).Delete(t.Context(), e.lease, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := a.result(t); !errors.Is(err, elector.ErrLeadershipLost) {
		t.Fatalf("a: Run = %v, want ErrLeadershipLost", err)
	}
	term := wait(t, b.started, "b to re-create the Lease")
	if since := time.Since(deleted); since < leaseDuration-retryPeriod {
		t.Fatalf("b re-created the Lease %v after deletion, before a's lease could expire", since)
	}
	if term.Token < 1 {
		t.Fatalf("token after re-creation = %d, want above a's 0", term.Token)
	}
	e.checkNoOverlap()
}

func TestLeaseEditedByHandDeposesTheLeaderAtOnce(t *testing.T) {
	e := newEnv(t, true)
	// A slow renewal rhythm: only the watch can make a stop in time.
	const slowRetry = 10 * time.Second
	a := e.start("a", func(c *elector.Config) {
		c.LeaseDuration, c.RenewDeadline, c.RetryPeriod = 60*time.Second, 40*time.Second, slowRetry
	})
	wait(t, a.started, "a to lead")
	l := e.getLease()
	l.Spec.HolderIdentity = ptr.To("intruder")
	l.Spec.LeaseTransitions = ptr.To(*l.Spec.LeaseTransitions + 1)
	edited := time.Now()
	if _, err := e.admin.CoordinationV1().Leases(e.ns).Update(t.Context(), l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	stopped := wait(t, a.stopped, "a to stop")
	t.Logf("leader stopped %v after the hand edit", stopped.Sub(edited).Round(time.Millisecond))
	if err := a.result(t); !errors.Is(err, elector.ErrLeadershipLost) || !strings.Contains(err.Error(), "intruder") {
		t.Fatalf("a: Run = %v, want ErrLeadershipLost naming the intruder", err)
	}
	if stopped.Sub(edited) >= slowRetry {
		t.Fatalf("a stopped %v after the edit: it waited for its renewal instead of the watch", stopped.Sub(edited))
	}
}

func TestForbiddenServiceAccountGetsTheRoleThatFixesIt(t *testing.T) {
	e := newEnv(t, false)
	el, err := elector.New(elector.Config{
		Leases: e.client().Leases(e.ns), Namespace: e.ns, Name: e.lease, Identity: "a",
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = el.Run(t.Context(), func(context.Context, elector.Term) error { return nil })
	var fe *elector.ForbiddenError
	if !errors.As(err, &fe) {
		t.Fatalf("Run = %v, want *elector.ForbiddenError", err)
	}
	t.Logf("error: %v\nfix:\n%s", err, fe.Fix)
	wantUser := "system:serviceaccount:" + e.ns + ":candidate"
	if fe.User != wantUser || fe.Verb != "get" || fe.Namespace != e.ns || fe.Name != e.lease {
		t.Fatalf("ForbiddenError = {User:%q Verb:%q Namespace:%q Name:%q}, want %q get %q %q",
			fe.User, fe.Verb, fe.Namespace, fe.Name, wantUser, e.ns, e.lease)
	}
	for _, want := range []string{wantUser, "get", "leases.coordination.k8s.io", e.ns, e.lease} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}

	// The Role in the fix is enough: apply it and the election works.
	start := strings.Index(fe.Fix, "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n")
	if start < 0 {
		t.Fatalf("the fix has no Role:\n%s", fe.Fix)
	}
	roleYAML := fe.Fix[start:]
	if end := strings.Index(roleYAML, "\n---"); end >= 0 {
		roleYAML = roleYAML[:end]
	}
	e.applyRole(roleYAML)
	c := e.start("a", nil)
	wait(t, c.started, "the election to work with the printed Role")
}

func TestMissingNamespaceIsNamed(t *testing.T) {
	e := newEnv(t, true)
	admin, err := coordinationv1client.NewForConfig(cp.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	el, err := elector.New(elector.Config{
		Leases: admin.Leases("no-such-ns"), Namespace: "no-such-ns", Name: e.lease, Identity: "a",
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = el.Run(t.Context(), func(context.Context, elector.Term) error { return nil })
	if err == nil || !strings.Contains(err.Error(), `namespace "no-such-ns" does not exist`) {
		t.Fatalf("Run = %v, want an error naming the missing namespace", err)
	}
}

func TestSharedWatchServesManyElections(t *testing.T) {
	e := newEnv(t, false)
	e.applyRole(rbac.Role(e.ns, "elector-shared", rbac.SharedLeaseRules()))
	shared := elector.NewSharedWatch(e.client().Leases(e.ns), e.ns, elector.SharedWatchOptions{})
	const n = 20
	var cands []*candidate
	for i := 0; i < n; i++ {
		cands = append(cands, e.start(fmt.Sprintf("p-%d", i), func(c *elector.Config) {
			c.Name = fmt.Sprintf("shard-%d", i)
			c.Watch = shared
		}))
	}
	for _, c := range cands {
		wait(t, c.started, c.id+" to lead its shard")
	}
	list, err := e.admin.CoordinationV1().Leases(e.ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != n {
		t.Fatalf("%d Leases, want %d", len(list.Items), n)
	}
}

func TestNotFoundErrorsAreNotFatalForFollowers(t *testing.T) {
	// A follower started before the Lease exists creates it.
	e := newEnv(t, true)
	if _, err := e.admin.CoordinationV1().Leases(e.ns).Get(t.Context(), e.lease, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Lease exists before the test: %v", err)
	}
	a := e.start("a", nil)
	if term := wait(t, a.started, "a to create and lead"); term.Token != 0 {
		t.Fatalf("token = %d on a new Lease, want 0", term.Token)
	}
}
