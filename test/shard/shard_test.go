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

// Package shard tests package shard against a real kube-apiserver and
// etcd, with replicas authenticated as a real ServiceAccount that holds
// the documented Role.
package sharding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/shard"
	"github.com/elector-dev/elector/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunMainNoLeaks(m, &cp))
}

// Short timings keep the suite fast; they satisfy the rules of the
// defaults (lease > renew > 1.2 × retry).
const (
	leaseDuration = 3 * time.Second
	renewDeadline = 2 * time.Second
	retryPeriod   = 500 * time.Millisecond
	guard         = 60 * time.Second // failure deadline for waits, not a timing assertion
	group         = "workers"
	k             = 12
)

var nsCounter atomic.Int32

// env is one test's namespace, a ServiceAccount with the Role shard
// documents, and an in-memory detector of double ownership per shard.
type env struct {
	t     *testing.T
	ns    string
	admin *kubernetes.Clientset
	sa    *rest.Config

	mu       sync.Mutex
	acting   map[int]string
	overlaps []string
	starts   int
	replicas map[string]*replica
}

type replica struct {
	id     string
	s      *shard.Shards
	cancel context.CancelFunc
	done   chan error
	cut    *atomic.Bool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := t.Context()
	admin, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		t: t, ns: fmt.Sprintf("shard-%d", nsCounter.Add(1)), admin: admin,
		acting: map[int]string{}, replicas: map[string]*replica{},
	}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.sa, err = cp.ServiceAccountConfig(ctx, e.ns, "replica")
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.Role
	if err := yaml.Unmarshal([]byte(rbac.Role(e.ns, "elector-shards", rbac.SharedLeaseRules())), &role); err != nil {
		t.Fatal(err)
	}
	role.Namespace = e.ns
	if _, err := admin.RbacV1().Roles(e.ns).Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "replica", Namespace: e.ns}},
	}
	if _, err := admin.RbacV1().RoleBindings(e.ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.stopAll)
	return e
}

// cuttable fails every request once cut: a process that died without a
// word (no release, no handoff).
type cuttable struct {
	coordinationv1client.LeaseInterface
	cut *atomic.Bool
}

var errCut = errors.New("connection refused (the replica was killed)")

func (c cuttable) Get(ctx context.Context, name string, o metav1.GetOptions) (*coordinationv1.Lease, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.LeaseInterface.Get(ctx, name, o)
}

func (c cuttable) Create(ctx context.Context, l *coordinationv1.Lease, o metav1.CreateOptions) (*coordinationv1.Lease, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.LeaseInterface.Create(ctx, l, o)
}

func (c cuttable) Update(ctx context.Context, l *coordinationv1.Lease, o metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.LeaseInterface.Update(ctx, l, o)
}

func (c cuttable) List(ctx context.Context, o metav1.ListOptions) (*coordinationv1.LeaseList, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.LeaseInterface.List(ctx, o)
}

func (c cuttable) Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.LeaseInterface.Watch(ctx, o)
}

func (e *env) start(id string) *replica {
	e.t.Helper()
	// client-go's default client-side limit (QPS 5, burst 10) is shared
	// by the member renewals and the bursts of a rebalancing; with it a
	// coordinator's renewal can wait past its stop point in the limiter
	// (seen here: "client rate limiter Wait returned an error"). Use
	// controller-runtime's defaults, as docs/sharding.md advises.
	cfg := rest.CopyConfig(e.sa)
	cfg.QPS, cfg.Burst = 20, 30
	cs, err := coordinationv1client.NewForConfig(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	cut := &atomic.Bool{}
	s, err := shard.New(shard.Config{
		Leases: cuttable{cs.Leases(e.ns), cut}, Namespace: e.ns, Group: group, Identity: id, Shards: k,
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
		Logger: slog.New(slog.NewTextHandler(e.t.Output(), nil)).With("replica", id),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{id: id, s: s, cancel: cancel, done: make(chan error, 1), cut: cut}
	e.mu.Lock()
	e.replicas[id] = r
	e.mu.Unlock()
	go func() {
		r.done <- s.Run(ctx, func(ctx context.Context, i int, term elector.Term) error {
			e.enter(i, id)
			<-ctx.Done()
			e.leave(i, id)
			return nil
		})
	}()
	return r
}

func (e *env) enter(i int, id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.starts++
	if other, ok := e.acting[i]; ok {
		e.overlaps = append(e.overlaps, fmt.Sprintf("shard %d: %s started while %s ran it", i, id, other))
	}
	e.acting[i] = id
}

func (e *env) leave(i int, id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.acting[i] == id {
		delete(e.acting, i)
	}
}

func (e *env) stop(id string) {
	e.t.Helper()
	e.mu.Lock()
	r := e.replicas[id]
	delete(e.replicas, id)
	e.mu.Unlock()
	if r == nil {
		return
	}
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil && !r.cut.Load() {
			e.t.Errorf("Run of %s returned %v", id, err)
		}
	case <-time.After(guard):
		e.t.Fatalf("Run of %s did not return", id)
	}
}

// kill cuts a replica off the API server, then ends it: it releases and
// hands on nothing.
func (e *env) kill(id string) {
	e.mu.Lock()
	r := e.replicas[id]
	e.mu.Unlock()
	r.cut.Store(true)
	e.stop(id)
}

func (e *env) stopAll() {
	e.mu.Lock()
	var ids []string
	for id := range e.replicas {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	for _, id := range ids {
		e.stop(id)
	}
}

// balanced reports whether every shard runs once and every replica runs
// ⌊K/N⌋ or ⌈K/N⌉ of them, and the distribution.
func (e *env) balanced() (bool, map[string]int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	per := map[string]int{}
	for _, id := range e.acting {
		per[id]++
	}
	n := len(e.replicas)
	if len(e.acting) != k || n == 0 {
		return false, per
	}
	for id := range e.replicas {
		if per[id] < k/n || per[id] > (k+n-1)/n {
			return false, per
		}
	}
	return true, per
}

// waitBalanced polls (every 10ms, a failure deadline of guard) until the
// group is balanced, and returns how long it took.
func (e *env) waitBalanced(what string) time.Duration {
	e.t.Helper()
	start := time.Now()
	for {
		ok, per := e.balanced()
		if ok {
			e.t.Logf("%s: balanced after %v: %v", what, time.Since(start).Round(time.Millisecond), per)
			return time.Since(start)
		}
		if time.Since(start) > guard {
			e.t.Fatalf("%s: not balanced after %v: %v", what, guard, per)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) check() {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.overlaps) > 0 {
		e.t.Fatalf("double ownership: %v", e.overlaps)
	}
}

func (e *env) startsSoFar() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.starts
}

// 3 → 5 → 2 replicas: balanced after each step, no shard ever runs twice,
// the planned moves are the minimal ones, and the assignment each replica
// reports matches what runs.
func TestScaleThreeFiveTwo(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"r1", "r2", "r3"} {
		e.start(id)
	}
	e.waitBalanced("3 replicas")
	e.check()

	before := e.startsSoFar()
	e.start("r4")
	e.start("r5")
	e.waitBalanced("3 → 5")
	// 12 over 5: 2 or 3 each. If the coordinator sees both new replicas
	// at once, 4 shards move (2 to each); if it sees one first, 3 move to
	// it (4 replicas: 3 each) and then 2 to the other: 5.
	if moved := e.startsSoFar() - before; moved < 4 || moved > 5 {
		t.Errorf("3 → 5 started %d shard functions, want 4 (or 5 when the new replicas are seen one at a time)", moved)
	}
	e.check()

	for _, id := range []string{"r1", "r2", "r3"} {
		e.stop(id)
	}
	e.waitBalanced("5 → 2")
	e.check()

	e.mu.Lock()
	var ids []string
	for id := range e.replicas {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	sort.Strings(ids)
	for _, id := range ids {
		a := e.replicas[id].s.Assignment()
		if !a.Synced || a.Shards != k || len(a.Table) != k || len(a.Running) != 6 {
			t.Errorf("Assignment of %s: synced %v, shards %d, table %d entries, running %v; want 6 of 12 running", id, a.Synced, a.Shards, len(a.Table), a.Running)
		}
	}
	e.stopAll()
	e.check()

	// Every object is labelled, so one label-selected watch sees the group.
	list, err := e.admin.CoordinationV1().Leases(e.ns).List(t.Context(), metav1.ListOptions{LabelSelector: shard.LabelGroup + "=" + group})
	if err != nil {
		t.Fatal(err)
	}
	// 5 member Leases, the coordinator's and the assignment.
	if len(list.Items) != 7 {
		t.Errorf("%d Leases carry the group label, want 7", len(list.Items))
	}
}

// A replica that dies without a word: its shards are taken only after its
// lease, then spread over the survivors.
func TestCrashedReplicaShardsAreTakenAfterTheLease(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"r1", "r2", "r3"} {
		e.start(id)
	}
	e.waitBalanced("3 replicas")
	killed := time.Now()
	e.kill("r2")
	took := e.waitBalanced("after r2 crashed")
	// A lower bound, so load cannot make it flaky: the survivors may act
	// only after the lease duration, counted from their last observation
	// of r2's member Lease (at most a retry period before the kill).
	if since := time.Since(killed); took < leaseDuration-retryPeriod {
		t.Errorf("r2's shards moved %v after the crash, before its lease (%v) could expire", since, leaseDuration)
	}
	e.check()
}
