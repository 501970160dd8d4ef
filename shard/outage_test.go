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

package shard_test

import (
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	testclock "k8s.io/utils/clock/testing"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/fake"
	"github.com/elector-dev/elector/shard"
)

// TestOutageIsLoggedOnceWhenItStartsAndOnceWhenItEnds: while the API
// server answers every request of a replica with 503 for a few seconds —
// renewals of its member and coordinator Leases, its watch — the replica
// logs one warning when the requests start failing and one info line
// when they are answered again, with the number of failed requests; not a
// line per failed request. Err says why meanwhile.
func TestOutageIsLoggedOnceWhenItStartsAndOnceWhenItEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leases := fake.NewLeases()
		var down atomic.Bool
		var failed atomic.Int64
		leases.SetReactor(func(context.Context, string, string, string) error {
			if down.Load() {
				failed.Add(1)
				return apierrors.NewServiceUnavailable("etcdserver: request timed out")
			}
			return nil
		})
		var logs syncBuffer
		clk := testclock.NewFakeClock(epoch)
		s, err := shard.New(shard.Config{
			Leases: leases.Leases(ns), Namespace: ns, Group: group, Identity: "a", Shards: 4, Clock: clk,
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- s.Run(ctx, func(ctx context.Context, _ int, _ elector.Term) error {
				<-ctx.Done()
				return nil
			})
		}()
		stop := sync.OnceValue(func() error { cancel(); synctest.Wait(); return <-done })
		t.Cleanup(func() { _ = stop() }) // after a failure too: the bubble must end empty
		step := func(n int) {
			for range n {
				clk.Step(time.Second)
				synctest.Wait()
			}
		}
		synctest.Wait()
		step(5)
		if got := len(s.Assignment().Running); got != 4 {
			t.Fatalf("%d of 4 shards run before the outage", got)
		}

		down.Store(true)
		leases.CloseAll()
		synctest.Wait()
		step(5) // shorter than the stop point (RenewDeadline - StopGrace)
		if n := failed.Load(); n < 3 {
			t.Fatalf("%d requests failed during the outage, want several", n)
		}
		if s.Err() == nil {
			t.Fatal("Err() = nil during the outage, want why")
		}
		down.Store(false)
		step(5)
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}

		out := logs.String()
		var warn, info []string
		for _, l := range strings.Split(out, "\n") {
			switch {
			case strings.Contains(l, `msg="API server unreachable; retrying"`):
				warn = append(warn, l)
			case strings.Contains(l, `msg="API server reachable again"`):
				info = append(info, l)
			case strings.Contains(l, "request timed out") && !strings.Contains(l, "level=DEBUG"):
				t.Errorf("a line per failed request above debug level: %s", l)
			}
		}
		if len(warn) != 1 || !strings.Contains(warn[0], "level=WARN") || !strings.Contains(warn[0], "request timed out") ||
			!strings.Contains(warn[0], "group="+ns+"/"+group) {
			t.Fatalf("warnings that the API server is unreachable: %q, want one at WARN with the error and the group; logs:\n%s", warn, out)
		}
		if len(info) != 1 || !strings.Contains(info[0], "level=INFO") {
			t.Fatalf("lines that it is reachable again: %q, want one at INFO; logs:\n%s", info, out)
		}
		m := regexp.MustCompile(`failedRequests=(\d+)`).FindStringSubmatch(info[0])
		if m == nil {
			t.Fatalf("recovery line %q lacks failedRequests", info[0])
		}
		if n, _ := strconv.Atoi(m[1]); n < 3 {
			t.Fatalf("recovery line %q: want failedRequests >= 3", info[0])
		}
	})
}
