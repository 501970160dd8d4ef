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

package election

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// clientGo runs client-go's own leaderelection package as a peer on the
// same Lease, with ReleaseOnCancel as most users set it.
type clientGo struct {
	id      string
	cancel  context.CancelFunc
	done    chan struct{}
	started chan struct{}
}

func (e *env) startClientGo(id string) *clientGo {
	e.t.Helper()
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metaOf(e.ns, e.lease),
		Client:     e.client(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	c := &clientGo{id: id, done: make(chan struct{}), started: make(chan struct{}, 1)}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   leaseDuration,
		RenewDeadline:   renewDeadline,
		RetryPeriod:     retryPeriod,
		ReleaseOnCancel: true,
		Name:            id,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) { c.started <- struct{}{} },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		defer close(c.done)
		le.Run(ctx)
	}()
	e.t.Cleanup(func() {
		cancel()
		wait(e.t, c.done, id+" (client-go) to return")
	})
	return c
}

func TestInteropWithClientGoBothWays(t *testing.T) {
	e := newEnv(t, true)

	// client-go leads first; elector follows and takes over on release.
	cg := e.startClientGo("client-go-1")
	wait(t, cg.started, "client-go to lead")
	el := e.start("elector-1", nil)
	follows(t, el, "client-go-1")
	if el.el.Leader().Self {
		t.Fatal("elector leads while client-go holds the Lease")
	}
	released := time.Now()
	cg.cancel()
	wait(t, cg.done, "client-go to release")
	term := wait(t, el.started, "elector to take over from client-go")
	t.Logf("client-go -> elector handoff: %v", time.Since(released).Round(time.Millisecond))
	if term.Token != 1 {
		t.Fatalf("elector token = %d, want 1 (client-go held the first tenure)", term.Token)
	}
	l := e.getLease()
	if *l.Spec.HolderIdentity != "elector-1" || int64(*l.Spec.LeaseDurationSeconds) != int64(leaseDuration/time.Second) {
		t.Fatalf("lease spec after elector took over = %+v", l.Spec)
	}

	// elector leads; a client-go follower takes over when elector releases.
	cg2 := e.startClientGo("client-go-2")
	select {
	case <-cg2.started:
		t.Fatal("client-go leads while elector holds the Lease")
	case <-time.After(2 * retryPeriod):
		// client-go polls; two polls saw the Lease held.
	}
	released = time.Now()
	el.cancel()
	if err := el.result(t); err != nil {
		t.Fatalf("elector Run = %v", err)
	}
	wait(t, cg2.started, "client-go to take over from elector")
	t.Logf("elector -> client-go handoff: %v (client-go polls every %v)", time.Since(released).Round(time.Millisecond), retryPeriod)
	l = e.getLease()
	if *l.Spec.HolderIdentity != "client-go-2" || *l.Spec.LeaseTransitions != 2 {
		t.Fatalf("after client-go took over: holder %q transitions %d, want client-go-2 and 2",
			*l.Spec.HolderIdentity, *l.Spec.LeaseTransitions)
	}
}

func metaOf(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}
