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
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/elector-dev/elector/shard"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// watchRun is `kubectl elector watch ARGS...` running against cs until
// stop; its watch requests get the returned fake watches, one each, in
// order, with the selectors they asked for.
type watchRun struct {
	out, errb lockedBuffer
	watches   chan *watch.FakeWatcher
	opts      chan k8stesting.WatchActionImpl
	stop      func() int
}

func startWatch(t *testing.T, cs *fake.Clientset, args ...string) *watchRun {
	t.Helper()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://unused.invalid"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: team-a}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &watchRun{watches: make(chan *watch.FakeWatcher, 4), opts: make(chan k8stesting.WatchActionImpl, 4)}
	// client-go's fake applies label selectors to lists, not field
	// selectors: apply metadata.name as the API server does.
	cs.PrependReactor("list", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		res := action.(k8stesting.ListActionImpl).GetListRestrictions()
		if res.Fields.Empty() {
			return false, nil, nil
		}
		gvr := coordinationv1.SchemeGroupVersion.WithResource("leases")
		obj, err := cs.Tracker().List(gvr, coordinationv1.SchemeGroupVersion.WithKind("Lease"), action.GetNamespace())
		if err != nil {
			return true, nil, err
		}
		list := obj.(*coordinationv1.LeaseList)
		var keep []coordinationv1.Lease
		for _, l := range list.Items {
			if res.Fields.Matches(fields.Set{"metadata.name": l.Name}) && res.Labels.Matches(labels.Set(l.Labels)) {
				keep = append(keep, l)
			}
		}
		list.Items = keep
		return true, list, nil
	})
	cs.PrependWatchReactor("leases", func(action k8stesting.Action) (bool, watch.Interface, error) {
		w := watch.NewFake()
		r.opts <- action.(k8stesting.WatchActionImpl)
		r.watches <- w
		return true, w, nil
	})
	a := &app{stdout: &r.out, stderr: &r.errb, clock: clocktesting.NewFakeClock(t0), kube: &kube{
		host: "https://unused.invalid", coordination: cs.CoordinationV1(), core: cs.CoreV1(),
		authz: cs.AuthorizationV1(), authn: cs.AuthenticationV1(), date: &serverDate{},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- a.run(ctx, append([]string{"--kubeconfig", kc}, args...)) }()
	var once sync.Once
	code := 0
	r.stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("kubectl elector %s did not return after ^C", strings.Join(args, " "))
			}
		})
		return code
	}
	t.Cleanup(func() { r.stop() })
	return r
}

// waitOutput waits until the output holds want.
func (r *watchRun) waitOutput(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(r.out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %q; output:\n%s\nstderr:\n%s", want, r.out.String(), r.errb.String())
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *watchRun) nextWatch(t *testing.T) (*watch.FakeWatcher, k8stesting.WatchActionImpl) {
	t.Helper()
	select {
	case w := <-r.watches:
		return w, <-r.opts
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for the watch request; output:\n%s\nstderr:\n%s", r.out.String(), r.errb.String())
		return nil, k8stesting.WatchActionImpl{}
	}
}

// TestWatchGroupByName: `watch GROUP` names a sharded group (no Lease of
// that name exists): it watches the group's Leases by their group label
// and reports them under the group — its coordinator, its members and
// each new generation of the assignment with its owners.
func TestWatchGroupByName(t *testing.T) {
	objs := append(shardLeases(), newLease("team-a", "other", "x", 0, electorMarker))
	cs := newFake(objs...)
	r := startWatch(t, cs, "watch", "workers")
	w, action := r.nextWatch(t)
	if sel := action.GetWatchRestrictions(); sel.Labels.String() != shard.LabelGroup+"=workers" || !sel.Fields.Empty() {
		t.Fatalf("watch of group workers with labels %q, fields %q; want the group label only", sel.Labels, sel.Fields)
	}
	r.waitOutput(t, "team-a/workers  coordinator: replica-a holds it")
	for _, want := range []string{
		"team-a/workers  assignment generation 5 of 4 shards: replica-a 0,2; replica-b 1,3; handing off 3 to replica-a",
		"team-a/workers  member replica-a is in (epoch 0)",
	} {
		r.waitOutput(t, want)
	}
	if out := r.out.String(); strings.Contains(out, "team-a/other") || strings.Contains(out, "no such Lease") {
		t.Fatalf("watch workers reported more than the group:\n%s", out)
	}

	// The coordinator completes the handoff: generation 6, replica-a
	// owns shard 3 now.
	cur, err := cs.CoordinationV1().Leases("team-a").Get(context.Background(), shard.AssignmentName("workers"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	next := cur.DeepCopy()
	next.Annotations[shard.AnnotationShards] = `{"format":1,"generation":6,"shards":[{"owner":"replica-a","token":2},{"owner":"replica-b","token":2},{"owner":"replica-a","token":2},{"owner":"replica-a","token":3}]}`
	next.ResourceVersion = "99"
	w.Modify(next)
	r.waitOutput(t, "team-a/workers  assignment generation 6 of 4 shards: replica-a 0,2,3; replica-b 1")
	if code := r.stop(); code != 0 {
		t.Fatalf("exit %d after ^C, want 0; stderr:\n%s", code, r.errb.String())
	}
}

// TestWatchNameStaysALease: a Lease named like a group, or a name that is
// neither, is watched as a Lease by its name, as before groups.
func TestWatchNameStaysALease(t *testing.T) {
	for _, tc := range []struct {
		name string
		objs []runtime.Object
		want string
	}{
		{"a Lease of that name exists", append(shardLeases(), newLease("team-a", "workers", "x", 0, electorMarker)), "team-a/workers  x holds it"},
		{"neither a Lease nor a group", nil, "team-a/workers  no such Lease yet; waiting for it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startWatch(t, newFake(tc.objs...), "watch", "workers")
			_, action := r.nextWatch(t)
			if sel := action.GetWatchRestrictions(); sel.Fields.String() != "metadata.name=workers" || !sel.Labels.Empty() {
				t.Fatalf("watch with labels %q, fields %q; want the Lease's name only", sel.Labels, sel.Fields)
			}
			r.waitOutput(t, tc.want)
			if strings.Contains(r.out.String(), "coordinator:") {
				t.Fatalf("watch of the Lease workers reported the group:\n%s", r.out.String())
			}
		})
	}
}
