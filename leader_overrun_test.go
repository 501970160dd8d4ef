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
	"sync/atomic"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/elector-dev/elector"
)

// TestReturnedLeaderFunctionIsNotAnOverrun: after a long pause (a frozen
// process, here a fake clock that jumps while a renewal hangs), the
// election loop may find, all at once, that the stop point and the renew
// deadline have passed and that the leader function has returned. It must
// not report ErrStopOverrun ("the function is still running: exit") for a
// function that has returned. The chaos tests found this: a sidecar whose
// elector was SIGSTOPped exited with code 7 although its watchdog had
// killed the command in time.
//
// The loop picks among ready channels at random, so the test repeats the
// scene.
func TestReturnedLeaderFunctionIsNotAnOverrun(t *testing.T) {
	for i := range 30 {
		w := newWorld(t)
		inUpdate := make(chan struct{}, 1)
		unblock := make(chan struct{})
		var hang atomic.Bool
		w.leases.SetReactor(func(ctx context.Context, verb, _, _ string) error {
			if verb != "update" || !hang.Load() {
				return nil
			}
			select {
			case inUpdate <- struct{}{}:
			default:
			}
			select {
			case <-unblock:
			case <-ctx.Done():
			}
			return apierrors.NewServiceUnavailable("slow")
		})
		e, err := elector.New(w.config("a"))
		if err != nil {
			t.Fatal(err)
		}
		started, quit := make(chan struct{}), make(chan struct{})
		returned := make(chan struct{})
		result := make(chan error, 1)
		go func() {
			result <- e.Run(context.Background(), func(context.Context, elector.Term) error {
				close(started)
				<-quit
				close(returned)
				return nil
			})
		}()
		wait(t, started, "a to lead")

		hang.Store(true)
		w.clock.Step(elector.DefaultRetryPeriod) // the renewal hangs in the API
		wait(t, inUpdate, "the renewal")
		// Frozen past the renew deadline; the function returns meanwhile.
		w.clock.Step(elector.DefaultRenewDeadline)
		close(quit)
		wait(t, returned, "the leader function to return")
		close(unblock)

		err = wait(t, result, "Run to return")
		if errors.Is(err, elector.ErrStopOverrun) {
			t.Fatalf("run %d: Run = %v, although the leader function had returned", i, err)
		}
	}
}

// TestPausedPastTheStopPointIsALossWhateverTheOrder: after a pause past
// the stop point, the loop may see the function's return before the stop
// timer. The tenure still ended at the stop point: Run reports the loss
// (a sidecar in exec mode exits 6), never a normal end with a release.
// The chaos tests found this: a frozen sidecar whose watchdog had killed
// its command exited with the command's code instead of 6.
func TestPausedPastTheStopPointIsALossWhateverTheOrder(t *testing.T) {
	for i := range 30 {
		w := newWorld(t)
		e, err := elector.New(w.config("a"))
		if err != nil {
			t.Fatal(err)
		}
		started, stepped := make(chan struct{}), make(chan struct{})
		result := make(chan error, 1)
		go func() {
			result <- e.Run(context.Background(), func(context.Context, elector.Term) error {
				close(started)
				<-stepped
				return errors.New("killed by the watchdog")
			})
		}()
		wait(t, started, "a to lead")
		// The process was frozen: the clock is past the stop point when
		// the function returns, and the loop sees both at once.
		w.clock.Step(elector.DefaultRenewDeadline)
		close(stepped)
		err = wait(t, result, "Run to return")
		if !errors.Is(err, elector.ErrLeadershipLost) {
			t.Fatalf("run %d: Run = %v, want ErrLeadershipLost", i, err)
		}
	}
}
