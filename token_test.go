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
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/elector-dev/elector"
)

// TestTokenGrowsAcrossRunsAfterTransitionsWereEditedBackwards: a leader
// whose leaseTransitions is edited backwards by hand steps down; when the
// same Elector campaigns again (the sidecar and most programs call Run in
// a loop) its next token must still be above every token it has seen,
// including its own last one. The chaos tests found this on a real API
// server: the remembered maximum lived in one Run only, and the next Run
// wrote token 3 after token 6.
func TestTokenGrowsAcrossRunsAfterTransitionsWereEditedBackwards(t *testing.T) {
	w := newWorld(t)
	_, err := w.leases.Leases(ns).Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: lease},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(""), LeaseTransitions: ptr.To[int32](5)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := elector.New(w.config("a"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run := func() (elector.Token, chan error) {
		started := make(chan elector.Token, 1)
		result := make(chan error, 1)
		go func() {
			result <- e.Run(ctx, func(ctx context.Context, term elector.Term) error {
				started <- term.Token
				<-ctx.Done()
				return nil
			})
		}()
		return wait(t, started, "a to lead"), result
	}
	first, result := run()
	if first != 6 {
		t.Fatalf("first token = %d, want 6", first)
	}

	// The hand edit keeps a as holder but sets transitions back to 2.
	l := w.get()
	l.Spec.LeaseTransitions = ptr.To[int32](2)
	if _, err := w.leases.Leases(ns).Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, result, "a to step down"); !errors.Is(err, elector.ErrLeadershipLost) {
		t.Fatalf("Run = %v, want ErrLeadershipLost", err)
	}

	second, result := run() // the Lease still names a: taken at once
	cancel()
	if err := wait(t, result, "a to return"); err != nil {
		t.Fatalf("Run = %v after cancel", err)
	}
	if second <= first {
		t.Fatalf("token %d after %d: fencing tokens must grow from tenure to tenure", second, first)
	}
}
