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
	"encoding/json"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

const testKey = resourcelock.LeaderElectionRecordAnnotationKey

func endpointsWith(record string) *v1.Endpoints {
	e := &v1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "e"}}
	if record != "" {
		e.Annotations = map[string]string{testKey: record}
	}
	return e
}

func newLock05(cs *fake.Clientset, id string) *lock05 {
	return &lock05{EndpointsLock: &resourcelock.EndpointsLock{
		EndpointsMeta: metav1.ObjectMeta{Namespace: "ns", Name: "e"},
		Client:        cs.CoreV1(),
		LockConfig:    resourcelock.ResourceLockConfig{Identity: id},
	}}
}

// updates counts the updates of the Endpoints.
func updates(cs *fake.Clientset) int {
	n := 0
	for _, a := range cs.Actions() {
		if _, ok := a.(k8stesting.UpdateAction); ok {
			n++
		}
	}
	return n
}

// written returns the records of the updates of the Endpoints, in order.
func written(t *testing.T, cs *fake.Clientset) []resourcelock.LeaderElectionRecord {
	t.Helper()
	var recs []resourcelock.LeaderElectionRecord
	for _, a := range cs.Actions() {
		u, ok := a.(k8stesting.UpdateAction)
		if !ok {
			continue
		}
		var rec resourcelock.LeaderElectionRecord
		if err := json.Unmarshal([]byte(u.GetObject().(*v1.Endpoints).Annotations[testKey]), &rec); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	return recs
}

func TestLock05EmptyHolderIsAHolder(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		record string
		want   string
	}{
		{"", ""}, // no annotation: free
		{`{"holderIdentity":"","leaseDurationSeconds":1,"acquireTime":null,"renewTime":null,"leaderTransitions":3}`, released},
		{`{"holderIdentity":"pod-a","leaseDurationSeconds":10,"acquireTime":null,"renewTime":null,"leaderTransitions":3}`, "pod-a"},
	} {
		l := newLock05(fake.NewSimpleClientset(endpointsWith(tc.record)), "pod-b")
		rec, _, err := l.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rec.HolderIdentity != tc.want {
			t.Errorf("record %q: holder %q, want %q", tc.record, rec.HolderIdentity, tc.want)
		}
	}
	if holderName(released) != "" || holderName("pod-a") != "pod-a" {
		t.Error("holderName")
	}
}

// TestElectorWaitsOutAnEmptyHolder runs client-go's LeaderElector on
// lock05: a record released by its holder (as client-go 1.14+ and elector
// release) is taken only a lease duration after it was first seen, and
// the count of transitions is old+1 in the acquiring write and 0 in the
// renewals, as 0.5 wrote it.
func TestElectorWaitsOutAnEmptyHolder(t *testing.T) {
	cs := fake.NewSimpleClientset(endpointsWith(`{"holderIdentity":"","leaseDurationSeconds":1,"acquireTime":null,"renewTime":null,"leaderTransitions":3}`))
	const lease = 1200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu      sync.Mutex
		started time.Time
		renewed = make(chan struct{})
	)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          newLock05(cs, "pod-b"),
		LeaseDuration: lease,
		RenewDeadline: lease / 2,
		RetryPeriod:   lease / 8,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				mu.Lock()
				started = time.Now()
				mu.Unlock()
				// Wait for two renewals.
				for ctx.Err() == nil && updates(cs) < 3 {
					time.Sleep(10 * time.Millisecond)
				}
				close(renewed)
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	done := make(chan struct{})
	go func() { defer close(done); le.Run(ctx) }()
	select {
	case <-renewed:
	case <-time.After(30 * time.Second):
		t.Fatal("not leading and renewing after 30s")
	}
	cancel()
	select { // bounded, like every wait (this module cannot share the root's internal/testwait: it pins the old client-go)
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of its context ending")
	}
	mu.Lock()
	waited := started.Sub(begin)
	mu.Unlock()
	if waited < lease {
		t.Errorf("took the released record after %v, before a lease duration (%v)", waited, lease)
	}
	recs := written(t, cs)
	if len(recs) < 3 {
		t.Fatalf("%d writes", len(recs))
	}
	if recs[0].HolderIdentity != "pod-b" || recs[0].LeaderTransitions != 4 {
		t.Errorf("acquiring write %+v, want pod-b with leaderTransitions 4", recs[0])
	}
	for _, r := range recs[1:] {
		if r.HolderIdentity != "pod-b" || r.LeaderTransitions != 0 || !r.AcquireTime.Equal(&recs[0].AcquireTime) {
			t.Errorf("renewal %+v, want pod-b, leaderTransitions 0, acquireTime %v", r, recs[0].AcquireTime)
		}
	}
}
