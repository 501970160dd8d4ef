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
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	testclock "k8s.io/utils/clock/testing"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/fake"
	"github.com/elector-dev/elector/internal/testwait"
	"github.com/elector-dev/elector/shard"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	ns    = "team-a"
	group = "workers"
)

var epoch = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

type idKey struct{}

// client tags each request with the replica's identity, for the fake
// API's reactor.
type client struct {
	elector.LeaseClient
	id string
}

func (c client) tag(ctx context.Context) context.Context {
	return context.WithValue(ctx, idKey{}, c.id)
}

func (c client) Get(ctx context.Context, name string, o metav1.GetOptions) (*coordinationv1.Lease, error) {
	return c.LeaseClient.Get(c.tag(ctx), name, o)
}

func (c client) Create(ctx context.Context, l *coordinationv1.Lease, o metav1.CreateOptions) (*coordinationv1.Lease, error) {
	return c.LeaseClient.Create(c.tag(ctx), l, o)
}

func (c client) Update(ctx context.Context, l *coordinationv1.Lease, o metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	return c.LeaseClient.Update(c.tag(ctx), l, o)
}

func (c client) List(ctx context.Context, o metav1.ListOptions) (*coordinationv1.LeaseList, error) {
	return c.LeaseClient.List(c.tag(ctx), o)
}

func (c client) Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return c.LeaseClient.Watch(c.tag(ctx), o)
}

// cluster is a group of replicas on one fake API, each with its own fake
// clock (stepped together, except while paused), with an overlap checker
// per shard.
type cluster struct {
	t      *testing.T
	k      int
	leases *fake.Leases

	mu       sync.Mutex
	replicas map[string]*replica
	acting   map[int]string // shard -> identity whose function runs
	overlaps []string
	lastTok  map[int]elector.Token
	lastID   map[int]string
	tokenErr []string
	starts   int // shard functions started
	cut      map[string]bool
	// work is what a shard function does once entered (nil: wait for
	// its ctx, then return nil).
	work func(ctx context.Context, id string, shard int) error
}

type replica struct {
	id     string
	clock  *testclock.FakeClock
	s      *shard.Shards
	cancel context.CancelFunc
	done   chan error
	paused int // steps left in a pause
	lag    time.Duration
}

func newCluster(t *testing.T, k int) *cluster {
	c := &cluster{
		t: t, k: k, leases: fake.NewLeases(), replicas: map[string]*replica{},
		acting: map[int]string{}, lastTok: map[int]elector.Token{}, lastID: map[int]string{}, cut: map[string]bool{},
	}
	c.leases.SetReactor(func(ctx context.Context, verb, _, _ string) error {
		id, _ := ctx.Value(idKey{}).(string)
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.cut[id] {
			return apierrors.NewServiceUnavailable("partitioned")
		}
		return nil
	})
	t.Cleanup(c.stopAll) // after a failure too: the bubble must end empty
	return c
}

func (c *cluster) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.replicas {
		if r.paused == 0 {
			return r.clock.Now()
		}
	}
	return epoch
}

func (c *cluster) logger() *slog.Logger {
	if os.Getenv("SHARD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// start adds a replica whose clock starts at the cluster's time.
func (c *cluster) start(id string) {
	clk := testclock.NewFakeClock(c.now())
	s, err := shard.New(shard.Config{
		Leases: client{c.leases.Leases(ns), id}, Namespace: ns, Group: group, Identity: id, Shards: c.k,
		Clock: clk, Logger: c.logger().With("replica", id),
	})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{id: id, clock: clk, s: s, cancel: cancel, done: make(chan error, 1)}
	c.mu.Lock()
	c.replicas[id] = r
	c.mu.Unlock()
	go func() {
		r.done <- s.Run(ctx, func(ctx context.Context, i int, term elector.Term) error {
			c.enter(i, id, term.Token)
			defer c.leave(i, id)
			if c.work != nil {
				return c.work(ctx, id, i)
			}
			<-ctx.Done()
			return nil
		})
	}()
	synctest.Wait()
}

func (c *cluster) enter(i int, id string, tok elector.Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.starts++
	if other, ok := c.acting[i]; ok {
		c.overlaps = append(c.overlaps, fmt.Sprintf("shard %d: %s and %s", i, other, id))
	}
	c.acting[i] = id
	if last, ok := c.lastTok[i]; ok && (tok < last || tok == last && c.lastID[i] != id) {
		c.tokenErr = append(c.tokenErr, fmt.Sprintf("shard %d: token %d for %s after %d for %s", i, tok, id, last, c.lastID[i]))
	}
	c.lastTok[i], c.lastID[i] = tok, id
}

func (c *cluster) leave(i int, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.acting[i] == id {
		delete(c.acting, i)
	}
}

// stop ends a replica gracefully (SIGTERM) and waits for Run.
func (c *cluster) stop(id string) {
	c.mu.Lock()
	r := c.replicas[id]
	delete(c.replicas, id)
	c.mu.Unlock()
	r.cancel()
	synctest.Wait()
	if err := testwait.Recv(c.t, r.done, id+"'s Run to return"); err != nil {
		c.t.Errorf("Run of %s: %v", id, err)
	}
}

// kill ends a replica without a word: its requests fail from now on, its
// functions stop at once.
func (c *cluster) kill(id string) {
	c.mu.Lock()
	c.cut[id] = true
	r := c.replicas[id]
	delete(c.replicas, id)
	c.mu.Unlock()
	r.cancel()
	synctest.Wait()
	testwait.Recv(c.t, r.done, id+"'s Run to return")
}

func (c *cluster) partition(id string, on bool) {
	c.mu.Lock()
	c.cut[id] = on
	c.mu.Unlock()
	if on {
		c.leases.CloseAll() // its watch must reconnect, and cannot
	}
}

// pause freezes a replica's clock for d (its timers do not fire); then
// the clock jumps to catch up, as after a process pause.
func (c *cluster) pause(id string, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.replicas[id]; r != nil {
		r.paused = int(d / time.Second)
	}
}

// step advances every clock by one second and lets everyone react.
func (c *cluster) step() {
	c.mu.Lock()
	var rs []*replica
	for _, r := range c.replicas {
		rs = append(rs, r)
	}
	c.mu.Unlock()
	for _, r := range rs {
		c.mu.Lock()
		paused := r.paused > 0
		if paused {
			r.paused--
			r.lag += time.Second
		}
		lag := r.lag
		if !paused {
			r.lag = 0
		}
		c.mu.Unlock()
		if !paused {
			r.clock.Step(time.Second + lag)
		}
		synctest.Wait()
	}
}

func (c *cluster) run(steps int) {
	for range steps {
		c.step()
	}
}

func (c *cluster) stopAll() {
	c.mu.Lock()
	var ids []string
	for id := range c.replicas {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	sort.Strings(ids)
	for _, id := range ids {
		c.stop(id)
	}
}

// check fails on double ownership and tokens that did not grow.
func (c *cluster) check() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.overlaps) > 0 {
		c.t.Fatalf("double ownership: %v", c.overlaps)
	}
	if len(c.tokenErr) > 0 {
		c.t.Fatalf("tokens did not grow: %v", c.tokenErr)
	}
}

// balanced fails unless every shard runs exactly once and every replica
// runs ⌊K/N⌋ or ⌈K/N⌉ shards.
func (c *cluster) balanced() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.replicas)
	per := map[string]int{}
	for _, id := range c.acting {
		per[id]++
	}
	if len(c.acting) != c.k {
		c.t.Fatalf("%d of %d shards run (%v)", len(c.acting), c.k, per)
	}
	for id := range c.replicas {
		if got := per[id]; got < c.k/n || got > (c.k+n-1)/n {
			c.t.Fatalf("K=%d N=%d: %s runs %d shards, want %d or %d (%v)", c.k, n, id, got, c.k/n, (c.k+n-1)/n, per)
		}
	}
	for id, r := range c.replicas {
		if got := len(r.s.Assignment().Running); got != per[id] {
			c.t.Fatalf("Assignment of %s lists %d running shards, its functions %d", id, got, per[id])
		}
	}
}

func (c *cluster) startsSoFar() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.starts
}

// Scale 3 → 4 → 2 → 5 with graceful stops: balanced after each step, only
// the surplus moves, and the moves need no lease duration to pass.
func TestScaleUpAndDownMovesOnlyTheSurplus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 12)
		for _, id := range []string{"a", "b", "c"} {
			c.start(id)
		}
		c.run(3)
		c.balanced()

		before := c.startsSoFar()
		c.start("d")
		c.run(1) // no lease duration: a second of fake time is enough
		c.balanced()
		if moved := c.startsSoFar() - before; moved != 3 {
			t.Fatalf("3 → 4 replicas started %d shard functions, want 3 (12/4 move to the new one)", moved)
		}

		before = c.startsSoFar()
		c.stop("a")
		c.stop("b")
		c.run(1)
		c.balanced()
		// a's 3 shards go to b, c and d; then b's 4 to c and d.
		if moved := c.startsSoFar() - before; moved != 7 {
			t.Fatalf("4 → 2 replicas (one stop after the other) started %d shard functions, want 7", moved)
		}

		for _, id := range []string{"e", "f", "g"} {
			c.start(id)
		}
		c.run(1)
		c.balanced()
		c.check()
		c.stopAll()
		c.check()
	})
}

// A crashed replica's shards are taken after its lease and spread over the
// survivors, with the next token.
func TestCrashedReplicaShardsMoveAfterTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 12)
		for _, id := range []string{"a", "b", "c"} {
			c.start(id)
		}
		c.run(3)
		c.balanced()
		c.kill("b")
		c.run(10) // before the lease duration (15s): b's shards wait
		c.mu.Lock()
		running := len(c.acting)
		c.mu.Unlock()
		if running != 8 {
			t.Fatalf("%d shards run 10s after a crash, want 8 (b's 4 wait for its lease)", running)
		}
		c.run(10)
		c.balanced()
		c.check()
		c.stopAll()
	})
}

// Randomized schedules of starts, graceful stops, kills, partitions and
// pauses (clock jumps within the margins of doc.go): no shard ever runs
// twice at once, tokens grow per shard, and the group is balanced once the
// faults stop.
func TestRandomSchedulesNeverDoubleOwn(t *testing.T) {
	seen := map[string]int{}
	for seed := range uint64(12) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { randomSchedule(t, seed, seen) })
		})
	}
	// The schedules must exercise every kind of fault, or they prove
	// nothing about it.
	for _, kind := range []string{"start", "stop", "kill", "partition", "pause"} {
		if seen[kind] == 0 {
			t.Errorf("no schedule had a %s: %v", kind, seen)
		}
	}
	t.Logf("faults over all seeds: %v", seen)
}

func randomSchedule(t *testing.T, seed uint64, seen map[string]int) {
	rng := rand.New(rand.NewPCG(seed, 14))
	c := newCluster(t, 12)
	next := 0
	newID := func() string { next++; return fmt.Sprintf("r%d", next) }
	for range 3 {
		c.start(newID())
	}
	ids := func() []string {
		c.mu.Lock()
		defer c.mu.Unlock()
		var out []string
		for id := range c.replicas {
			out = append(out, id)
		}
		sort.Strings(out)
		return out
	}
	var partitioned []string
	paused := false
	for step := 0; step < 120; step++ {
		live := ids()
		switch x := rng.IntN(20); {
		case x == 0 && len(live) < 6:
			seen["start"]++
			c.start(newID())
		case x == 1 && len(live) > 1:
			seen["stop"]++
			c.stop(live[rng.IntN(len(live))])
		case x == 2 && len(live) > 1:
			seen["kill"]++
			c.kill(live[rng.IntN(len(live))])
		case x == 3 && len(partitioned) == 0 && len(live) > 1:
			seen["partition"]++
			id := live[rng.IntN(len(live))]
			partitioned = append(partitioned, id)
			c.partition(id, true)
		case x == 4 && len(partitioned) > 0:
			for _, id := range partitioned {
				c.partition(id, false)
			}
			partitioned = nil
		case x == 5 && !paused && len(live) > 0:
			// At most one pause at a time, of at most 3s: the margins of
			// doc.go (LeaseDuration − RenewDeadline + StopGrace = 7s)
			// cover a clock that lags by that much.
			seen["pause"]++
			c.pause(live[rng.IntN(len(live))], time.Duration(1+rng.IntN(3))*time.Second)
			paused = true
		case x == 6:
			paused = false
		}
		c.step()
		c.check()
	}
	for _, id := range partitioned {
		c.partition(id, false)
	}
	if len(ids()) == 0 {
		c.start(newID())
	}
	c.run(40) // faults over: expired members are fenced, shards spread
	c.balanced()
	c.check()
	c.stopAll()
	c.check()
}

// A replica configured with another K refuses to run, with a clear error.
func TestShardCountMismatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 12)
		c.start("a")
		c.run(2)
		clk := testclock.NewFakeClock(c.now())
		s, err := shard.New(shard.Config{Leases: c.leases.Leases(ns), Namespace: ns, Group: group, Identity: "b", Shards: 16, Clock: clk, Logger: c.logger()})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			done <- s.Run(context.Background(), func(ctx context.Context, _ int, _ elector.Term) error { <-ctx.Done(); return nil })
		}()
		synctest.Wait()
		for range 5 {
			clk.Step(time.Second)
			synctest.Wait()
		}
		select {
		case err := <-done:
			if !errors.Is(err, shard.ErrShardCountMismatch) {
				t.Fatalf("Run returned %v, want ErrShardCountMismatch", err)
			}
		default:
			t.Fatal("Run with another K did not return")
		}
		c.stopAll()
	})
}

func TestConfigErrors(t *testing.T) {
	base := shard.Config{Leases: fake.NewLeases().Leases(ns), Namespace: ns, Group: group, Identity: "a", Shards: 4}
	for name, mod := range map[string]func(*shard.Config){
		"no shards":     func(c *shard.Config) { c.Shards = 0 },
		"too many":      func(c *shard.Config) { c.Shards = shard.MaxShards + 1 },
		"bad group":     func(c *shard.Config) { c.Group = "Not_A_Label" },
		"long group":    func(c *shard.Config) { c.Group = "a234567890123456789012345678901234567890x" },
		"no identity":   func(c *shard.Config) { c.Identity = "" },
		"bad durations": func(c *shard.Config) { c.LeaseDuration = time.Second },
	} {
		cfg := base
		mod(&cfg)
		var ce *elector.ConfigError
		if _, err := shard.New(cfg); !errors.As(err, &ce) {
			t.Errorf("%s: New returned %v, want a *ConfigError", name, err)
		}
	}
}

// table reads the group's table from the API.
func (c *cluster) table() shard.Table {
	c.t.Helper()
	l, err := c.leases.Leases(ns).Get(context.Background(), shard.AssignmentName(group), metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	tab, err := shard.TableOf(l)
	if err != nil {
		c.t.Fatal(err)
	}
	return tab
}

// until steps the clocks until cond holds, at most steps times.
func (c *cluster) until(steps int, what string, cond func() bool) {
	c.t.Helper()
	for range steps {
		if cond() {
			return
		}
		c.step()
	}
	if !cond() {
		c.t.Fatalf("after %d steps of 1s: %s", steps, what)
	}
}

// A shard asked for a handoff whose function is not running (it returned
// and waits for its restart) is handed on at once, while another shard of
// the same request still stops: it does not wait for the slowest stopping
// function. The running one is handed on when it returns.
func TestHandoffOfAShardNotRunningDoesNotWaitForASlowStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 4)
		release := make(chan struct{})
		var once sync.Once
		free := func() { once.Do(func() { close(release) }) }
		t.Cleanup(free) // before the cluster stops, after a failure too
		c.work = func(ctx context.Context, _ string, i int) error {
			switch i {
			case 3: // returns at once: between restarts it does not run
				return errors.New("no work yet")
			case 2: // stops only when the test says so
				<-ctx.Done()
				<-release
				return nil
			}
			<-ctx.Done()
			return nil
		}
		c.start("a")
		c.until(10, "a does not own all 4 shards", func() bool {
			for _, sl := range c.table().Shards {
				if sl.Owner != "a" {
					return false
				}
			}
			return true
		})
		// b joins: a is asked to hand on its surplus, shards 2 and 3.
		c.start("b")
		c.until(10, "shard 3 (not running) was not handed to b while shard 2 still stops", func() bool {
			return c.table().Shards[3].Owner == "b"
		})
		if sl := c.table().Shards[2]; sl.Owner != "a" || sl.HandoffTo != "b" {
			t.Fatalf("shard 2, whose function has not returned, is %+v; want owned by a with a handoff to b pending", sl)
		}
		free()
		c.until(10, "shard 2 was not handed to b after its function returned", func() bool {
			return c.table().Shards[2].Owner == "b"
		})
		c.check()
		c.stopAll()
		c.check()
	})
}

// An assignment Lease this version cannot parse (a newer format, a hand
// edit) is an error the replica reports, with a log line, while it runs
// no shard and re-reads the Lease with a backoff: not a create/get loop.
// Once the Lease is fixed, the shards run.
func TestUnreadableAssignmentBacksOffAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leases := fake.NewLeases()
		cl := leases.Leases(ns)
		bad, err := cl.Create(context.Background(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
			Name: shard.AssignmentName(group), Namespace: ns,
			Labels:      map[string]string{shard.LabelGroup: group, shard.LabelRole: shard.RoleAssignment},
			Annotations: map[string]string{shard.AnnotationShards: `{"format":2,"generation":1,"shards":[]}`},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Count the requests on the assignment Lease. A loop without a
		// pause would never let synctest.Wait return: past 50 creates or
		// gets the reactor blocks them until their context ends.
		var mu sync.Mutex
		counts := map[string]int{}
		leases.SetReactor(func(ctx context.Context, verb, _, name string) error {
			if name != shard.AssignmentName(group) {
				return nil
			}
			mu.Lock()
			counts[verb]++
			n := counts[verb]
			mu.Unlock()
			if n > 50 {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		})
		count := func(verb string) int {
			mu.Lock()
			defer mu.Unlock()
			return counts[verb]
		}
		var logs syncBuffer
		clk := testclock.NewFakeClock(epoch)
		s, err := shard.New(shard.Config{
			Leases: cl, Namespace: ns, Group: group, Identity: "a", Shards: 4, Clock: clk,
			Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		var started int
		go func() {
			done <- s.Run(ctx, func(ctx context.Context, _ int, _ elector.Term) error {
				mu.Lock()
				started++
				mu.Unlock()
				<-ctx.Done()
				return nil
			})
		}()
		stop := sync.OnceValue(func() error { cancel(); synctest.Wait(); return <-done })
		t.Cleanup(func() { _ = stop() }) // after a failure too: the bubble must end empty
		synctest.Wait()
		for range 60 {
			clk.Step(time.Second)
			synctest.Wait()
		}
		// 60s: reads after 2, 4, 8 and 16 s of backoff (2, 6, 14 and 30 s),
		// and none at the start if the watch brought the Lease first.
		if c, g := count("create"), count("get"); c > 1 || g > 6 {
			t.Fatalf("in 60s the coordinator sent %d creates and %d gets of the unreadable assignment, want at most 1 and 6", c, g)
		}
		if g := count("get"); g < 3 {
			t.Fatalf("in 60s the coordinator read the unreadable assignment %d times, want it to retry (at least 3)", g)
		}
		if err := s.Err(); err == nil || !strings.Contains(err.Error(), "format 2") {
			t.Fatalf("Err() = %v, want the parse error (format 2)", err)
		}
		mu.Lock()
		n := started
		mu.Unlock()
		if n != 0 {
			t.Fatalf("%d shard functions started on an unreadable assignment", n)
		}
		for _, want := range []string{
			`msg="Unable to read the assignment; not planning until it is fixed"`,
			`msg="Unable to read the assignment; running no shard until it is fixed"`,
			"resourceVersion=" + bad.ResourceVersion, "retryIn=",
		} {
			if !strings.Contains(logs.String(), want) {
				t.Fatalf("the logs lack %s:\n%s", want, logs.String())
			}
		}

		// Fixed by hand: a readable table, all shards unowned.
		fixed := bad.DeepCopy()
		cur, err := cl.Get(context.Background(), fixed.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fixed.ResourceVersion = cur.ResourceVersion
		fixed.Annotations[shard.AnnotationShards] = `{"format":1,"generation":1,"shards":[{"token":0},{"token":0},{"token":0},{"token":0}]}`
		if _, err := cl.Update(context.Background(), fixed, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		for i := 0; i < 10 && len(s.Assignment().Running) < 4; i++ {
			clk.Step(time.Second)
			synctest.Wait()
		}
		if got := len(s.Assignment().Running); got != 4 || s.Err() != nil {
			t.Fatalf("10s after the fix %d of 4 shards run (Err %v)", got, s.Err())
		}
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for concurrent writes (log handlers).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
