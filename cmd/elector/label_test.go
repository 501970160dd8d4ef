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

package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/testwait"
)

const labelKey = "elector.dev/leader"

func pod(name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a", Labels: labels}}
}

// newLabelFixture has pod-a (us, unlabeled), pod-b (crashed former
// leader, still labeled), pod-c (same key, other value: not ours) and
// pod-d (unlabeled).
func newLabelFixture() (*fake.Clientset, *labeler, *clocktesting.FakeClock) {
	cs := fake.NewClientset(
		pod("pod-a", nil),
		pod("pod-b", map[string]string{labelKey: "true", "app": "x"}),
		pod("pod-c", map[string]string{labelKey: "false"}),
		pod("pod-d", map[string]string{"app": "x"}),
	)
	fc := clocktesting.NewFakeClock(t0)
	l := &labeler{
		pods:      typedCore{cs.CoreV1()},
		namespace: "team-a",
		self:      "pod-a",
		key:       labelKey,
		value:     "true",
		retry:     2 * time.Second,
		unmarkIn:  time.Second,
		clock:     fc,
		log:       slog.New(slog.DiscardHandler),
	}
	return cs, l, fc
}

func labelsOf(t *testing.T, cs *fake.Clientset) map[string]string {
	t.Helper()
	list, err := cs.CoreV1().Pods("team-a").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range list.Items {
		v, ok := p.Labels[labelKey]
		if !ok {
			v = "-"
		}
		got[p.Name] = v
	}
	return got
}

func wantLabels(t *testing.T, cs *fake.Clientset, want map[string]string) {
	t.Helper()
	got := labelsOf(t, cs)
	for name, w := range want {
		if got[name] != w {
			t.Errorf("pod %s label = %q, want %q (all: %v)", name, got[name], w, got)
		}
	}
}

func TestLabelerClaimAndUnmark(t *testing.T) {
	cs, l, _ := newLabelFixture()
	ctx := context.Background()
	if err := l.claim(ctx); err != nil {
		t.Fatal(err)
	}
	wantLabels(t, cs, map[string]string{"pod-a": "true", "pod-b": "-", "pod-c": "false", "pod-d": "-"})
	// Other labels survive.
	b, _ := cs.CoreV1().Pods("team-a").Get(ctx, "pod-b", metav1.GetOptions{})
	if b.Labels["app"] != "x" {
		t.Errorf("pod-b lost its other labels: %v", b.Labels)
	}
	// The label was removed from others before it was set on us.
	var order []string
	for _, a := range cs.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			order = append(order, p.GetName())
		}
	}
	if !equal(order, []string{"pod-b", "pod-a"}) {
		t.Errorf("patch order = %v, want [pod-b pod-a]", order)
	}

	if err := l.unmark(ctx); err != nil {
		t.Fatal(err)
	}
	wantLabels(t, cs, map[string]string{"pod-a": "-", "pod-b": "-", "pod-c": "false"})
}

// hold claims while leading and unlabels when the tenure ends.
func TestLabelerHold(t *testing.T) {
	cs, l, _ := newLabelFixture()
	var patched atomic.Int32
	labeled := make(chan struct{})
	cs.PrependReactor("patch", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.PatchAction).GetName() == "pod-a" && patched.Add(1) == 1 {
			defer close(labeled)
		}
		return false, nil, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.hold(ctx); close(done) }()
	testwait.Recv(t, labeled, "pod-a to be labeled")
	cancel()
	testwait.Recv(t, done, "the labeler to return")
	wantLabels(t, cs, map[string]string{"pod-a": "-", "pod-b": "-"})
}

// Transient errors are retried after the retry period, on the clock.
func TestLabelerRetries(t *testing.T) {
	cs, l, fc := newLabelFixture()
	var lists atomic.Int32
	cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if lists.Add(1) == 1 {
			return true, nil, apierrors.NewServiceUnavailable("etcd is sad")
		}
		return false, nil, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { l.hold(ctx); close(done) }()
	waitForWaiter(t, fc)
	if got := labelsOf(t, cs)["pod-a"]; got != "-" {
		t.Fatalf("labeled despite the failed list: %q", got)
	}
	fc.Step(l.retry)
	// The second attempt succeeds; hold then waits for ctx.
	waitForLabel(t, cs, "pod-a")
	wantLabels(t, cs, map[string]string{"pod-b": "-"})
	cancel()
	testwait.Recv(t, done, "the labeler to return")
	wantLabels(t, cs, map[string]string{"pod-a": "-"})
}

// A 403 does not end the tenure: it is retried (the permission was
// checked at start, so a denial now is an API server restarting or a Role
// being replaced), the log names the fix, and once the permission is back
// the label is set.
func TestLabelerRetriesADenial(t *testing.T) {
	cs, l, fc := newLabelFixture()
	var logs syncBuffer
	l.log = slog.New(slog.NewTextHandler(&logs, nil))
	var denied atomic.Bool
	denied.Store(true)
	cs.PrependReactor("patch", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if !denied.Load() {
			return false, nil, nil
		}
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, a.(k8stesting.PatchAction).GetName(),
			errors.New(`User "system:serviceaccount:team-a:app" cannot patch resource "pods" in API group "" in the namespace "team-a"`))
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.hold(ctx); close(done) }()
	waitForWaiter(t, fc) // denied, waiting to retry
	select {
	case <-done:
		t.Fatal("hold returned after a 403, want it to keep trying")
	default:
	}
	if log := logs.String(); !strings.Contains(log, `msg="Permission denied; retrying"`) || !strings.Contains(log, "kind: Role") {
		t.Errorf("log lacks the denial and its fix:\n%s", log)
	}
	denied.Store(false)
	fc.Step(l.retry)
	waitForLabel(t, cs, "pod-a")
	cancel()
	testwait.Recv(t, done, "the labeler to return")
}

// waitForWaiter spins until the code under test waits on the fake clock.
func waitForWaiter(t *testing.T, fc *clocktesting.FakeClock) {
	t.Helper()
	testwait.Until(t, "the code under test to wait on the clock", fc.HasWaiters)
}

// lead labels the Pod for the tenure and unlabels it before returning.
func TestLeadWithLabel(t *testing.T) {
	cs, l, fc := newLabelFixture()
	labeled := make(chan struct{})
	var once atomic.Bool
	cs.PrependReactor("patch", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.PatchAction).GetName() == "pod-a" && once.CompareAndSwap(false, true) {
			defer close(labeled)
		}
		return false, nil, nil
	})
	a := &app{cfg: config{identity: "pod-a"}, log: l.log, clock: fc, label: l}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.lead(ctx, elector.Term{Token: 4, Identity: "pod-a"}) }()
	testwait.Recv(t, labeled, "pod-a to be labeled")
	cancel()
	if err := testwait.Recv(t, done, "lead to return"); err != nil {
		t.Fatal(err)
	}
	wantLabels(t, cs, map[string]string{"pod-a": "-", "pod-b": "-"})
}

// waitForLabel waits until pod carries the leader label.
func waitForLabel(t *testing.T, cs *fake.Clientset, pod string) {
	t.Helper()
	testwait.Until(t, "pod "+pod+" to be labeled", func() bool { return labelsOf(t, cs)[pod] == "true" })
}

// An outage of the API server while the label moves is one warning when
// the attempts start failing and one info line when one succeeds, not an
// error per attempt.
func TestLabelerLogsAnOutageOnce(t *testing.T) {
	cs, l, fc := newLabelFixture()
	var logs syncBuffer
	l.log = slog.New(slog.NewTextHandler(&logs, nil))
	var down atomic.Bool
	down.Store(true)
	var failed atomic.Int32
	cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if down.Load() {
			failed.Add(1)
			return true, nil, apierrors.NewServiceUnavailable("etcdserver: leader changed")
		}
		return false, nil, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.hold(ctx); close(done) }()
	const failures = 4
	for i := 1; i < failures; i++ {
		testwait.Until(t, "a failed attempt", func() bool { return failed.Load() == int32(i) })
		waitForWaiter(t, fc)
		fc.Step(l.retry)
	}
	testwait.Until(t, "the last failed attempt", func() bool { return failed.Load() == failures })
	waitForWaiter(t, fc)
	down.Store(false)
	fc.Step(l.retry)
	waitForLabel(t, cs, "pod-a")
	cancel()
	testwait.Recv(t, done, "the labeler to return")

	log := logs.String()
	if n := strings.Count(log, "level=WARN"); n != 1 || !strings.Contains(log, `level=WARN msg="API server unreachable; retrying" request="move the leader label"`) {
		t.Errorf("%d warnings, want one that the API server is unreachable:\n%s", n, log)
	}
	if !strings.Contains(log, `level=INFO msg="API server reachable again" unreachableFor=8s failedRequests=4`) {
		t.Errorf("log lacks the one line that the API server is reachable again after 8s and 4 failed attempts:\n%s", log)
	}
	if strings.Contains(log, "level=ERROR") {
		t.Errorf("an error line per failed attempt:\n%s", log)
	}
}
