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

package migrate_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/elector-dev/elector"
)

// logBuffer is a bytes.Buffer safe for concurrent writes (log handlers).
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestGuardLogsAnOutageOnceWhenItStartsAndOnceWhenItEnds: renewals of the
// old lock that fail for a while (shorter than the stop point) are one
// warning and, when one succeeds again, one info line with the number of
// failed requests — not a line per failed renewal; the work goes on.
func TestGuardLogsAnOutageOnceWhenItStartsAndOnceWhenItEnds(t *testing.T) {
	f := newFixture(t)
	var logs logBuffer
	f.lock.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var down atomic.Bool
	updates := make(chan bool, 100) // each update sent: whether it failed
	f.cs.PrependReactor("update", "endpoints", func(k8stesting.Action) (bool, runtime.Object, error) {
		failing := down.Load()
		updates <- failing
		if failing {
			return true, nil, apierrors.NewServiceUnavailable("etcdserver: leader changed")
		}
		return false, nil, nil
	})
	// renewal steps the clock by 100ms until a renewal is sent (a step
	// that races with the arming of the next renewal's timer delays it
	// by a step) and reports whether it failed.
	renewal := func() bool {
		t.Helper()
		deadline := time.After(guard)
		for {
			select {
			case failed := <-updates:
				return failed
			case <-deadline:
				t.Fatalf("timed out waiting for a renewal of the old lock at %v; logs:\n%s", f.clock.Since(epoch), logs.String())
			case <-time.After(20 * time.Millisecond):
				f.step(100 * time.Millisecond)
			}
		}
	}
	f.run()
	wait(t, f.started, "the work to start on a free lock")
	down.Store(true)
	// Renewals every RetryPeriod, retried after half of it when they
	// fail: three fail, well before the stop point, then one succeeds.
	const failures = 3
	for range failures {
		if !renewal() {
			t.Fatal("a renewal got through during the outage")
		}
	}
	down.Store(false)
	if renewal() {
		t.Fatal("a renewal failed after the outage")
	}
	if at, stop := f.clock.Now(), epoch.Add(elector.DefaultRenewDeadline-elector.DefaultStopGrace); !at.Before(stop) {
		t.Fatalf("the outage lasted past the stop point (%v): the clock ran too far ahead of the renewals", at.Sub(epoch))
	}
	// The renewal's answer is handled after the fake API server's
	// reactor returns: wait for the line it brings.
	deadline := time.Now().Add(guard)
	for !strings.Contains(logs.String(), "API server reachable again") {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the line that the API server is reachable again; logs:\n%s", logs.String())
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-f.stopped:
		t.Fatal("the work stopped during an outage shorter than its stop point")
	default:
	}
	f.cancel()
	wait(t, f.stopped, "the work to stop")
	if err := wait(t, f.result, "Guard to return"); err != nil {
		t.Fatalf("Guard = %v, want nil", err)
	}

	out := logs.String()
	var warn, info []string
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(l, `msg="API server unreachable; retrying"`):
			warn = append(warn, l)
		case strings.Contains(l, `msg="API server reachable again"`):
			info = append(info, l)
		case strings.Contains(l, "leader changed") && !strings.Contains(l, "level=DEBUG"):
			t.Errorf("a line per failed request above debug level: %s", l)
		}
	}
	if len(warn) != 1 || !strings.Contains(warn[0], "level=WARN") || !strings.Contains(warn[0], "leader changed") ||
		!strings.Contains(warn[0], "oldLock=endpoints/default/elect") {
		t.Fatalf("warnings that the API server is unreachable: %q, want one at WARN with the error and the old lock; logs:\n%s", warn, out)
	}
	if len(info) != 1 || !strings.Contains(info[0], "level=INFO") || !strings.Contains(info[0], "failedRequests=3") ||
		!strings.Contains(info[0], "unreachableFor=") {
		t.Fatalf("lines that it is reachable again: %q, want one at INFO with how long it lasted and 3 failed requests; logs:\n%s", info, out)
	}
}
