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

package suite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/elector-dev/elector/shard"
	"github.com/elector-dev/elector/test/controlplane"
	"github.com/elector-dev/elector/test/watchcount"
)

// ScenarioShardedCtrl is the sharded controller-runtime scenario: the
// example operator of ctrl/example/sharded reconciling many ConfigMaps,
// sharded by elector, beside one leader and beside every replica
// filtering (Knative-style).
const ScenarioShardedCtrl = "sharded-controllers"

// Designs of the sharded-controllers scenario.
const (
	scLeader  = "one leader (plain controller-runtime)"
	scFilter  = "every replica watches all, filters (Knative-style)"
	scSharded = "elector sharded (ctrl.NewShardedManager)"
	scMoved   = "elector sharded, 2 → 4 replicas during the run"
)

const (
	// scShards is K of the sharded runs: equal parts for N = 1, 2, 4.
	scShards = 8
	// scWorkers is every replica's reconciles at a time, whatever it owns.
	scWorkers = 10
	// scWork is the simulated I/O latency of one reconcile.
	scWork = 20 * time.Millisecond
	// scLabel is the label the operator selects (its default).
	scLabel = "example.elector.dev/sharded"
	// scReadyTimeout bounds the start of a variant's replicas: lists,
	// watches and, sharded, the assignment.
	scReadyTimeout = 2 * time.Minute
	// scRunTimeout bounds one variant's reconciles of every object.
	scRunTimeout = 5 * time.Minute
	// scMoveAt is the part of the objects reconciled when the moving
	// variant adds its two replicas.
	scMoveAt = 0.3
)

// scTimings are the replicas' lease timings: shorter than the defaults
// so that the sharded group balances faster, as in the e2e tests.
var scTimings = []string{"--lease-duration=8s", "--renew-deadline=5s", "--retry-period=1s"}

// shardedCtrlResult is one variant of the scenario.
type shardedCtrlResult struct {
	design string
	n      int // replicas (at the end)
	err    error

	objects  int
	elapsed  time.Duration // start signal → every object reconciled once
	repeats  int           // objects reconciled more than once before the updates
	overlaps int           // reconciles of one object by two replicas at one instant
	moved    int           // moving variant: objects reconciled by two replicas

	syncBytes []int64 // per replica, LIST and WATCH bytes of ConfigMaps before the updates
	updates   int
	events    []int64 // per replica, watch events during the updates
	bytes     []int64 // per replica, watch bytes during the updates
	refEvents int64   // the unsharded reference watch's, during the updates
	refBytes  int64
}

func (r shardedCtrlResult) throughput() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.objects) / r.elapsed.Seconds()
}

// runShardedCtrl builds the example, creates the objects once, and runs
// every variant on them in turn.
func runShardedCtrl(ctx context.Context, e *env, res *results) error {
	bin := filepath.Join(e.dir, "sharded")
	root, err := moduleDir(ctx, "github.com/elector-dev/elector")
	if err != nil {
		return err
	}
	if err := goCmd(ctx, filepath.Join(root, "ctrl"), append(slices.Clone(buildFlags), "-o", bin, "./example/sharded")...); err != nil {
		return err
	}
	ns, err := e.namespace(ctx, "sharded-ctrl")
	if err != nil {
		return err
	}
	e.logf("creating %d ConfigMaps", e.opts.ShardedObjects)
	uids, err := createObjects(ctx, e, ns, e.opts.ShardedObjects)
	if err != nil {
		return err
	}
	proxy, err := watchcount.Start(e.cp.URL(), e.admin.TLSClientConfig.CAData)
	if err != nil {
		return err
	}
	defer proxy.Close()
	stopRef, err := referenceWatch(ctx, e, proxy, ns)
	if err != nil {
		return err
	}
	defer stopRef()

	for i, v := range []struct {
		design string
		n      int
	}{
		{scLeader, 1}, {scSharded, 1}, {scSharded, 2}, {scSharded, 4}, {scFilter, 2}, {scFilter, 4}, {scMoved, 4},
	} {
		e.logf("sharded-controllers: %s, N = %d", v.design, v.n)
		r := shardedCtrlVariant(ctx, e, proxy, bin, ns, fmt.Sprintf("v%d", i), v.design, v.n, uids)
		if r.err != nil {
			e.logf("sharded-controllers: %s, N = %d failed: %v", v.design, v.n, r.err)
		}
		res.shardedCtrl = append(res.shardedCtrl, r)
		e.procs.killAll()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// createObjects creates n labelled ConfigMaps in ns, 16 at a time, and
// returns their UIDs by name.
func createObjects(ctx context.Context, e *env, ns string, n int) (map[string]types.UID, error) {
	cfg := *e.admin
	cfg.QPS, cfg.Burst = 2000, 2000
	kube, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		return nil, fmt.Errorf("unable to create a client: %w", err)
	}
	var mu sync.Mutex
	uids := make(map[string]types.UID, n)
	next := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				cm, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("obj-%05d", i), Labels: map[string]string{scLabel: "1"}},
					Data:       map[string]string{"version": "1"},
				}, metav1.CreateOptions{})
				if err != nil {
					errs <- fmt.Errorf("unable to create ConfigMap %d: %w", i, err)
					return
				}
				mu.Lock()
				uids[cm.Name] = cm.UID
				mu.Unlock()
			}
		}()
	}
	var ferr error
feed:
	for i := range n {
		select {
		case next <- i:
		case ferr = <-errs:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if ferr == nil {
		select {
		case ferr = <-errs:
		default:
		}
	}
	return uids, ferr
}

// referenceWatch watches the labelled ConfigMaps unsharded through the
// proxy (tag "reference"), as controller-runtime does (protobuf,
// uncompressed), until the returned stop.
func referenceWatch(ctx context.Context, e *env, proxy *watchcount.Proxy, ns string) (func(), error) {
	cfg := proxy.Config(e.admin, "reference")
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.DisableCompression = true
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("unable to create the reference client: %w", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	list, err := kube.CoreV1().ConfigMaps(ns).List(wctx, metav1.ListOptions{LabelSelector: scLabel, Limit: 1})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("unable to list for the reference watch: %w", err)
	}
	w, err := kube.CoreV1().ConfigMaps(ns).Watch(wctx, metav1.ListOptions{LabelSelector: scLabel, ResourceVersion: list.ResourceVersion})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("unable to start the reference watch: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range w.ResultChan() {
		}
	}()
	return func() {
		cancel()
		w.Stop()
		<-done
	}, nil
}

// scReplica is one process of a variant.
type scReplica struct {
	id     string
	p      *proc
	record string
}

// shardedCtrlVariant runs one variant: N replicas start, become ready
// (sharded: balanced), get the start signal at once and reconcile every
// object; then objects are updated while each replica's watch traffic is
// counted; then the replicas get SIGTERM.
func shardedCtrlVariant(ctx context.Context, e *env, proxy *watchcount.Proxy, bin, ns, tag, design string, n int, uids map[string]types.UID) shardedCtrlResult {
	res := shardedCtrlResult{design: design, n: n, objects: len(uids)}
	dir := filepath.Join(e.dir, "sc-"+tag)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.err = err
		return res
	}
	startFile := filepath.Join(dir, "start")
	group := "sc-" + tag
	var reps []*scReplica
	start := func(i int) error {
		id := fmt.Sprintf("%s-%d", tag, i)
		kubeconfig := filepath.Join(dir, id+".kubeconfig")
		if err := writeKubeconfig(proxy, e, id, kubeconfig); err != nil {
			return err
		}
		port, err := freePort()
		if err != nil {
			return err
		}
		r := &scReplica{id: id, record: filepath.Join(dir, id+".record")}
		args := append([]string{
			"--kubeconfig=" + kubeconfig, "--id=" + id, "--namespace=" + ns, "--group=" + group,
			"--shards=" + strconv.Itoa(scShards), "--workers=" + strconv.Itoa(scWorkers), "--work=" + scWork.String(),
			"--write=false", "--record=" + r.record, "--start-file=" + startFile,
			fmt.Sprintf("--probe-addr=127.0.0.1:%d", port),
		}, scTimings...)
		switch design {
		case scLeader:
			args = append(args, "--plain")
		case scFilter:
			args = append(args, fmt.Sprintf("--filter-of=%d", n), fmt.Sprintf("--filter-index=%d", i))
		}
		if r.p, err = e.procs.start(id, bin, args, nil, nil); err != nil {
			return err
		}
		reps = append(reps, r)
		return nil
	}
	first := n
	if design == scMoved {
		first = 2
	}
	for i := range first {
		if res.err = start(i); res.err != nil {
			return res
		}
	}
	if res.err = scWaitReady(ctx, e, proxy, ns, group, design, reps); res.err != nil {
		return res
	}
	time.Sleep(500 * time.Millisecond) // let the caches settle after the lists
	t0 := time.Now()
	if res.err = os.WriteFile(startFile, nil, 0o644); res.err != nil {
		return res
	}
	deadline := time.Now().Add(scRunTimeout)
	grown := design != scMoved
	for {
		recs, err := scRecords(reps)
		if err != nil {
			res.err = err
			return res
		}
		done := scFirstEnds(recs)
		if !grown && float64(len(done)) >= scMoveAt*float64(len(uids)) {
			for i := first; i < n; i++ {
				if res.err = start(i); res.err != nil {
					return res
				}
			}
			grown = true
		}
		if len(done) >= len(uids) && grown {
			var last time.Time
			for _, end := range done {
				if end.After(last) {
					last = end
				}
			}
			res.elapsed = last.Sub(t0)
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			res.err = fmt.Errorf("%d of %d objects reconciled within %v", len(done), len(uids), scRunTimeout)
			return res
		}
		for _, r := range reps {
			if !r.p.running() {
				res.err = r.p.failure("exited during the run")
				return res
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if design == scMoved {
		// The new replicas take their shards; measure the traffic once
		// the group is balanced again.
		if res.err = scWaitReady(ctx, e, proxy, ns, group, design, reps); res.err != nil {
			return res
		}
	}
	updateStart := time.Now()
	res.syncBytes, res.events, res.bytes = make([]int64, len(reps)), make([]int64, len(reps)), make([]int64, len(reps))
	before := make([]watchcount.Count, len(reps))
	for i, r := range reps {
		before[i] = proxy.Get(watchcount.Key{Tag: r.id, Resource: "configmaps"})
		res.syncBytes[i] = before[i].ListBytes + before[i].WatchBytes
	}
	refBefore := proxy.Get(watchcount.Key{Tag: "reference", Resource: "configmaps"})
	res.updates = e.opts.ShardedUpdates
	if res.err = updateObjects(ctx, e, ns, res.updates); res.err != nil {
		return res
	}
	// Every update is one event on the reference watch; wait for them.
	for wait := time.Now().Add(time.Minute); ; {
		got := proxy.Get(watchcount.Key{Tag: "reference", Resource: "configmaps"}).WatchEvents - refBefore.WatchEvents
		if got >= int64(res.updates) {
			break
		}
		if time.Now().After(wait) {
			res.err = fmt.Errorf("the reference watch saw %d of %d updates within a minute", got, res.updates)
			return res
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // the replicas' watches deliver theirs too
	ref := proxy.Get(watchcount.Key{Tag: "reference", Resource: "configmaps"}).Sub(refBefore)
	res.refEvents, res.refBytes = ref.WatchEvents, ref.WatchBytes
	for i, r := range reps {
		d := proxy.Get(watchcount.Key{Tag: r.id, Resource: "configmaps"}).Sub(before[i])
		res.events[i], res.bytes[i] = d.WatchEvents, d.WatchBytes
	}
	for _, r := range reps {
		r.p.signal(syscall.SIGTERM)
	}
	for _, r := range reps {
		if err := r.p.stop(ctrlStopTimeout); err != nil {
			res.err = err
			return res
		}
	}
	recs, err := scRecords(reps)
	if err != nil {
		res.err = err
		return res
	}
	res.repeats, res.overlaps, res.moved = scCheck(recs, updateStart)
	return res
}

// writeKubeconfig writes the admin's kubeconfig through the proxy,
// counted under id.
func writeKubeconfig(proxy *watchcount.Proxy, e *env, id, path string) error {
	return controlplane.WriteKubeconfig(proxy.Config(e.admin, id), path)
}

// scWaitReady waits until every replica watches its ConfigMaps: one
// watch for the leader (none on the others); one per owned shard,
// with every replica owning K/N and no handoff pending (sharded); one
// each (filtering).
func scWaitReady(ctx context.Context, e *env, proxy *watchcount.Proxy, ns, group, design string, reps []*scReplica) error {
	deadline := time.Now().Add(scReadyTimeout)
	last := ""
	for {
		open := map[string]int64{}
		total := int64(0)
		for _, r := range reps {
			open[r.id] = proxy.Get(watchcount.Key{Tag: r.id, Resource: "configmaps"}).Open
			total += open[r.id]
		}
		ready := false
		switch design {
		case scLeader:
			ready = total == 1
		case scFilter:
			ready = total == int64(len(reps))
			for _, o := range open {
				ready = ready && o == 1
			}
		default:
			l, err := e.kube.CoordinationV1().Leases(ns).Get(ctx, shard.AssignmentName(group), metav1.GetOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("unable to read the assignment: %w", err)
			}
			if err == nil {
				if tb, err := shard.TableOf(l); err == nil {
					owned := map[string]int{}
					ready = true
					for _, s := range tb.Shards {
						owned[s.Owner]++
						ready = ready && s.HandoffTo == ""
					}
					for _, r := range reps {
						ready = ready && owned[r.id] == scShards/len(reps) && open[r.id] == int64(owned[r.id])
					}
					last = fmt.Sprintf("owners %v, open watches %v", owned, open)
				}
			}
		}
		if ready {
			return nil
		}
		for _, r := range reps {
			if !r.p.running() {
				return r.p.failure("exited before it was ready")
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the replicas were not ready within %v: open watches %v; %s", scReadyTimeout, open, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// updateObjects bumps data.version of the first n objects, 16 at a time.
func updateObjects(ctx context.Context, e *env, ns string, n int) error {
	cfg := *e.admin
	cfg.QPS, cfg.Burst = 2000, 2000
	kube, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		return fmt.Errorf("unable to create a client: %w", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				patch := fmt.Sprintf(`{"data":{"version":"%d"}}`, time.Now().UnixNano())
				_, err := kube.CoreV1().ConfigMaps(ns).Patch(ctx, fmt.Sprintf("obj-%05d", i), types.MergePatchType, []byte(patch), metav1.PatchOptions{})
				if err != nil {
					mu.Lock()
					first = errors.Join(first, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		return fmt.Errorf("unable to update the objects: %w", first)
	}
	return nil
}

// scRec is one reconcile from a replica's record.
type scRec struct {
	id, object string
	start, end time.Time
}

// scRecords reads the records of reps (whole lines only).
func scRecords(reps []*scReplica) ([]scRec, error) {
	var out []scRec
	for _, r := range reps {
		f, err := os.Open(r.record)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) != 8 {
				continue
			}
			s, err1 := strconv.ParseInt(fs[6], 10, 64)
			en, err2 := strconv.ParseInt(fs[7], 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			out = append(out, scRec{id: fs[0], object: fs[3], start: time.Unix(0, s), end: time.Unix(0, en)})
		}
		f.Close()
	}
	return out, nil
}

// scFirstEnds returns when each object's first reconcile ended.
func scFirstEnds(recs []scRec) map[string]time.Time {
	m := make(map[string]time.Time, len(recs))
	for _, r := range recs {
		if t, ok := m[r.object]; !ok || r.end.Before(t) {
			m[r.object] = r.end
		}
	}
	return m
}

// scCheck counts the objects reconciled more than once before the
// updates began, the pairs of reconciles of one object that overlap in
// time (two owners at one instant), and the objects reconciled by more
// than one replica.
func scCheck(recs []scRec, updates time.Time) (repeats, overlaps, moved int) {
	by := map[string][]scRec{}
	for _, r := range recs {
		by[r.object] = append(by[r.object], r)
	}
	for _, rs := range by {
		sort.Slice(rs, func(i, j int) bool { return rs[i].start.Before(rs[j].start) })
		before := 0
		ids := map[string]bool{}
		var lastEnd time.Time
		for i, r := range rs {
			if r.start.Before(updates) {
				before++
			}
			ids[r.id] = true
			if i > 0 && r.start.Before(lastEnd) {
				overlaps++
			}
			if r.end.After(lastEnd) {
				lastEnd = r.end
			}
		}
		if before > 1 {
			repeats++
		}
		if len(ids) > 1 {
			moved++
		}
	}
	return repeats, overlaps, moved
}

// Targets of the sharded-controllers scenario (issue 23).
const (
	targetShardedThroughput = 0.8 // × N × one leader's objects/s
	targetShardedTraffic    = 1.2 // ÷ N × the unsharded watch's events
)

// ShardedCtrlHeading starts the scenario's section of the report (the
// bench command's --splice replaces that section alone).
const ShardedCtrlHeading = "## Sharded controllers"

func renderShardedCtrl(m *md, r *results) {
	if len(r.shardedCtrl) == 0 {
		return
	}
	objects, updates := r.opts.ShardedObjects, r.opts.ShardedUpdates
	m.p("%s: %d ConfigMaps, N = 1, 2, 4 replicas", ShardedCtrlHeading, objects)
	m.p("")
	cmd := r.opts.Command
	if cmd == "" {
		cmd = "make bench"
	}
	m.p("*Run: `%s`, %s, load average %s at start, %s at end; this scenario took %v.*", cmd, r.started.UTC().Format("2006-01-02 15:04 MST"),
		r.machine.loadStart, r.machine.loadEnd, r.scenarioTime(ScenarioShardedCtrl).Round(time.Second))
	m.p("")
	m.p("The example operator `ctrl/example/sharded` (controller-runtime v0.25) as separate processes on a kube-apiserver with `--feature-gates=ShardedListAndWatch=true`; each replica reaches it through a counting proxy (`test/watchcount`) that counts, per replica, the LIST bytes and the WATCH events and bytes of ConfigMaps. A reconcile reads the object from the cache and waits %v of simulated I/O, at most %d at a time per replica (so that the result is bound by the replicas' I/O, not this machine's two cores; no writes). The replicas start, list and watch (sharded: the group balances K = %d shards, each replica watching only its shards' ranges), then all get the start signal at once; *reconciled in*: start signal → every object's first reconcile ended. Then %d objects are updated and each replica's watch traffic during the updates is compared with an unsharded watch of the same objects (what one leader receives). *Twice*: objects reconciled more than once before the updates; *at one instant*: pairs of reconciles of one object, by any replicas, that overlap in time.", scWork, scWorkers, scShards, updates)
	m.p("")
	var leader float64
	var refEvents int64
	for _, x := range r.shardedCtrl {
		if x.design == scLeader && x.err == nil {
			leader = x.throughput()
		}
		if x.refEvents > refEvents {
			refEvents = x.refEvents
		}
	}
	m.header("design", "N", "reconciled in", "objects/s", "× one leader", "target", "met?",
		"bytes to sync, per replica", "watch events (bytes) per replica", "÷ unsharded", "target", "met?", "twice", "at one instant")
	for _, x := range r.shardedCtrl {
		if x.err != nil {
			m.row(x.design, fmt.Sprint(x.n), "failed: "+oneLine(x.err.Error()), "", "", "", "", "", "", "", "", "", "", "")
			continue
		}
		tp := x.throughput()
		thrTarget, thrMet := "", noTarget
		trTarget, trMet := "", noTarget
		maxEv := int64(0)
		for _, ev := range x.events {
			maxEv = max(maxEv, ev)
		}
		share := 0.0
		if x.refEvents > 0 {
			share = float64(maxEv) / float64(x.refEvents)
		}
		if x.design == scSharded {
			thrTarget = fmt.Sprintf("≥ %.1f×", targetShardedThroughput*float64(x.n))
			trTarget = fmt.Sprintf("≤ %.2f", targetShardedTraffic/float64(x.n))
			if x.design == scSharded && leader > 0 {
				thrMet = check(tp >= targetShardedThroughput*float64(x.n)*leader)
				m.miss(thrMet, fmt.Sprintf("sharded throughput ≥ %.1f× one leader at N = %d", targetShardedThroughput*float64(x.n), x.n))
			} else if x.design == scSharded {
				thrMet = unknown
			}
			if x.design == scSharded {
				trMet = check(share <= targetShardedTraffic/float64(x.n))
				m.miss(trMet, fmt.Sprintf("watch traffic per replica ≤ %.2f of the unsharded at N = %d", targetShardedTraffic/float64(x.n), x.n))
			}
		}
		lists := make([]string, len(x.syncBytes))
		for i, b := range x.syncBytes {
			lists[i] = mib(b)
		}
		evs := make([]string, len(x.events))
		for i, ev := range x.events {
			evs[i] = fmt.Sprintf("%d (%s)", ev, mib(x.bytes[i]))
		}
		at := fmt.Sprint(x.overlaps)
		if x.design == scMoved {
			v := check(x.overlaps == 0)
			m.miss(v, "rebalance with 0 reconciles of one object at one instant")
			at += fmt.Sprintf(" (target 0: %s; %d objects moved to a new replica)", v, x.moved)
		}
		m.row(x.design, fmt.Sprint(x.n), dur(x.elapsed), num(tp), ratioF(tp, leader), thrTarget, thrMet.String(),
			strings.Join(lists, " / "), strings.Join(evs, " / "), num(share), trTarget, trMet.String(), fmt.Sprint(x.repeats), at)
	}
	m.p("")
	m.p("*Bytes to sync*: LIST and WATCH bytes of ConfigMaps a replica received before the updates (plain controller-runtime gets its initial state as a streaming list on the watch; the sharded informers list, since a list's ShardInfo tells whether the server applied the selector). Bytes are as on the wire: controller-runtime's own watches came gzip-compressed in this run, the sharded managers' not, so compare events. *÷ unsharded*: the busiest replica's watch events during the %d updates ÷ the unsharded watch's (%d events). The Knative-style replicas each receive every event and list every object, whatever N; the sharded replicas receive their shards' only, from the API server. The moving run starts with 2 replicas and adds 2 when %.0f%% of the objects are reconciled; its shards move by package shard's handoff (the old owner's controllers stop before the new owner's start), so the new owners reconcile the moved objects again (a fresh cache lists them): *moved*, never at one instant with the old owner.", updates, refEvents, scMoveAt*100)
	m.p("")
}

// scenarioTime is how long the named scenario ran.
func (r *results) scenarioTime(name string) time.Duration {
	for _, d := range r.durations {
		if d.name == name {
			return d.d
		}
	}
	return 0
}
