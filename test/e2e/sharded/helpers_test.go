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

package sharded

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/sharding"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/elector-dev/elector/internal/testwait"
	"github.com/elector-dev/elector/shard"
	"github.com/elector-dev/elector/test/controlplane"
	"github.com/elector-dev/elector/test/internal/proc"
	"github.com/elector-dev/elector/test/internal/sidecar"
	"github.com/elector-dev/elector/test/watchcount"
)

const (
	// guard is a failure deadline for waits, not a timing assertion: the
	// machine may be slow and shared.
	guard = 90 * time.Second
	// pollEvery paces the waits.
	pollEvery = 50 * time.Millisecond
	// group is the shard group's name (its Leases are named after it).
	group = "shop"
	// shards is K: with 4, every replica of 1, 2 or 4 owns an equal part.
	shards = 4
	// label marks the ConfigMaps the operator reconciles (its default).
	label = "example.elector.dev/sharded"
	// The annotations the operator writes (ctrl/example/sharded).
	annOwner    = "example.elector.dev/owner"
	annToken    = "example.elector.dev/token"
	annObserved = "example.elector.dev/observed-version"
	// resource is what the proxy counts.
	resource = "configmaps"
	// refTag is the proxy's tag of the test's own unsharded watch, the
	// reference every replica's share is measured against.
	refTag = "reference"
	// fallbackLog is the operator's one log line when the API server
	// ignores the shard selector (ctrl's ShardedManager).
	fallbackLog = "The API server did not apply the shard selector"
	// fallbackMetric is ctrl.MetricShardSelectorFallback.
	fallbackMetric = "elector_ctrl_shard_selector_fallback"
)

// timings are the replicas' LeaseDuration, RenewDeadline and RetryPeriod:
// shorter than the defaults (15s/10s/2s) so that rebalancing takes less
// waiting, with RenewDeadline well above a renewal's worst latency on a
// busy machine with -race binaries.
var timings = []string{"--lease-duration=8s", "--renew-deadline=5s", "--retry-period=1s"}

var nsCounter atomic.Int32

// testCtx is the test's context with the failure deadline.
func testCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), guard)
	t.Cleanup(cancel)
	return c
}

// env is one test's namespace on one control plane: the operator's
// ServiceAccount and Role, the counting proxy every replica goes
// through, the reference watch, and the replicas' records.
type env struct {
	c     *controlplane.ControlPlane
	ns    string
	admin kubernetes.Interface
	sa    *rest.Config
	proxy *watchcount.Proxy
	dir   string
	reps  map[string]*replica

	refStop context.CancelFunc
	refDone chan struct{}
	refErr  atomic.Value // string: why the reference watch ended early
}

func setup(t *testing.T, c *controlplane.ControlPlane) *env {
	t.Helper()
	ns := fmt.Sprintf("sharded-%d-%s", nsCounter.Add(1), strings.ToLower(t.Name()))
	if len(ns) > 63 {
		ns = strings.TrimRight(ns[:63], "-")
	}
	dir := t.TempDir()
	m := &sidecar.Manifests{
		ServiceAccount: &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "operator"}},
		Role: &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: "operator"},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update"}},
				{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "patch"}},
				{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			},
		},
		RoleBinding: &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "operator"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "operator"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "operator", Namespace: ns}},
		},
	}
	ctx := testCtx(t)
	n, err := sidecar.Apply(ctx, c, ns, m, dir)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := c.ServiceAccountConfig(ctx, ns, "operator")
	if err != nil {
		t.Fatal(err)
	}
	p, err := watchcount.Start(c.URL(), c.AdminConfig().TLSClientConfig.CAData)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	e := &env{c: c, ns: ns, admin: n.Admin, sa: sa, proxy: p, dir: dir, reps: map[string]*replica{}}
	e.startReference(t)
	return e
}

// startReference opens the test's own watch of the labelled ConfigMaps,
// unsharded, in protobuf as controller-runtime asks for built-in types,
// through the proxy: the events every replica's share is measured
// against.
func (e *env) startReference(t *testing.T) {
	t.Helper()
	cfg := e.proxy.Config(e.c.AdminConfig(), refTag)
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	// Uncompressed, as the replicas' watches are: the proxy counts
	// events by their framing, which gzip hides.
	cfg.DisableCompression = true
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := kube.CoreV1().ConfigMaps(e.ns).Watch(ctx, metav1.ListOptions{LabelSelector: label, AllowWatchBookmarks: true})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	e.refStop, e.refDone = cancel, make(chan struct{})
	go func() {
		defer close(e.refDone)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-w.ResultChan():
				if !ok {
					if ctx.Err() == nil {
						e.refErr.Store("the reference watch closed early")
					}
					return
				}
			}
		}
	}()
	t.Cleanup(func() {
		e.refStop()
		testwait.Recv(t, e.refDone, "the reference watch to stop")
	})
}

// replica is one process of the example operator.
type replica struct {
	name    string
	p       *proc.Process
	probe   string // host:port of /healthz and /readyz
	metrics string // host:port of /metrics
}

// start starts a replica that reaches the API server through the proxy,
// counted under its name.
func (e *env) start(t *testing.T, name string) *replica {
	t.Helper()
	kubeconfig := filepath.Join(e.dir, name+".kubeconfig")
	if err := controlplane.WriteKubeconfig(e.proxy.Config(e.sa, name), kubeconfig); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 2)
	r := &replica{name: name, probe: fmt.Sprintf("127.0.0.1:%d", ports[0]), metrics: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	args := append([]string{
		"--kubeconfig=" + kubeconfig, "--id=" + name, "--namespace=" + e.ns, "--group=" + group,
		"--shards=" + strconv.Itoa(shards), "--workers=4", "--work=20ms",
		"--record=" + filepath.Join(e.dir, name+".record"), "--lock-dir=" + filepath.Join(e.dir, "locks"),
		"--probe-addr=" + r.probe, "--metrics-addr=" + r.metrics,
	}, timings...)
	p, err := proc.Start(proc.Options{
		Name: name, Path: example(t), Args: args,
		Env: append(os.Environ(), "GORACE=atexit_sleep_ms=0"),
		Log: t.Output(), WaitDelay: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	e.reps[name] = r
	t.Cleanup(func() {
		r.p.Kill()
		if strings.Contains(r.p.Output(), "WARNING: DATA RACE") {
			t.Errorf("%s: the race detector found a data race; see its output above", name)
		}
	})
	return r
}

func (r *replica) exitCode(t *testing.T) int {
	t.Helper()
	code, err := r.p.Wait(testCtx(t))
	if err != nil {
		t.Fatalf("%v\n%s", err, r.p.Output())
	}
	return code
}

// table reads the shard group's assignment.
func (e *env) table(t *testing.T) (shard.Table, bool) {
	t.Helper()
	l, err := e.admin.CoordinationV1().Leases(e.ns).Get(testCtx(t), shard.AssignmentName(group), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return shard.Table{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	tb, err := shard.TableOf(l)
	if err != nil {
		t.Fatal(err)
	}
	return tb, true
}

// owned counts the shards of each owner in the table.
func owned(tb shard.Table) map[string]int {
	m := map[string]int{}
	for _, s := range tb.Shards {
		m[s.Owner]++
	}
	return m
}

// waitBalanced waits until the assignment gives every one of ids K/N
// shards, with no handoff pending, and each replica watches the
// ConfigMaps with exactly one watch per shard it owns (the shards'
// managers have started, and those of the shards it gave away stopped).
func (e *env) waitBalanced(t *testing.T, ids ...string) {
	t.Helper()
	want := shards / len(ids)
	deadline := time.Now().Add(guard)
	last := ""
	for {
		tb, ok := e.table(t)
		balanced := ok && len(tb.Shards) == shards
		if balanced {
			own := owned(tb)
			for _, s := range tb.Shards {
				if s.HandoffTo != "" {
					balanced = false
				}
			}
			for _, id := range ids {
				open := e.proxy.Get(watchcount.Key{Tag: id, Resource: resource}).Open
				if own[id] != want || open != int64(want) {
					balanced = false
				}
			}
			last = fmt.Sprintf("owners %v, open ConfigMap watches %v", own, e.openWatches(ids))
		}
		if balanced {
			return
		}
		for _, id := range ids {
			select {
			case <-e.reps[id].p.Done():
				t.Fatalf("%s exited while the group balanced:\n%s", id, e.reps[id].p.Output())
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v did not own %d shards each, one watch per shard, within %v; last: %s", ids, want, guard, last)
		}
		time.Sleep(pollEvery)
	}
}

func (e *env) openWatches(ids []string) map[string]int64 {
	m := map[string]int64{}
	for _, id := range ids {
		m[id] = e.proxy.Get(watchcount.Key{Tag: id, Resource: resource}).Open
	}
	return m
}

// measurement is the ConfigMap watch traffic of each replica over one
// steady-state window, beside the reference watch's.
type measurement struct {
	ids    []string
	owned  map[string]int
	counts map[string]watchcount.Count
	ref    watchcount.Count
	moved  bool // a shard changed owner or token during the window
	// expected is each replica's share of the driver's writes in the
	// window: those to objects in the shards it owns.
	expected map[string]float64
}

// measure counts the watch traffic of ids over d while the driver runs.
func (e *env) measure(t *testing.T, dr *driver, d time.Duration, ids ...string) measurement {
	t.Helper()
	before := map[string]watchcount.Count{}
	for _, id := range ids {
		before[id] = e.proxy.Get(watchcount.Key{Tag: id, Resource: resource})
	}
	refBefore := e.proxy.Get(watchcount.Key{Tag: refTag, Resource: resource})
	tb0, _ := e.table(t)
	from := time.Now()
	time.Sleep(d) // the window: the driver's writes flow meanwhile
	to := time.Now()
	tb1, _ := e.table(t)
	m := measurement{ids: ids, owned: owned(tb1), counts: map[string]watchcount.Count{}}
	for _, id := range ids {
		m.counts[id] = e.proxy.Get(watchcount.Key{Tag: id, Resource: resource}).Sub(before[id])
	}
	m.ref = e.proxy.Get(watchcount.Key{Tag: refTag, Resource: resource}).Sub(refBefore)
	// A shard moved if its owner or token changed (the table's generation
	// also grows when, say, a leaving replica's entry is cleared).
	m.moved = len(tb0.Shards) != len(tb1.Shards)
	for i := range min(len(tb0.Shards), len(tb1.Shards)) {
		a, b := tb0.Shards[i], tb1.Shards[i]
		m.moved = m.moved || a.Owner != b.Owner || a.Token != b.Token
	}
	per, total := dr.opsPerShard(from, to)
	m.expected = map[string]float64{}
	for i, s := range tb1.Shards {
		m.expected[s.Owner] += float64(per[i]) / float64(max(1, total))
	}
	if v := e.refErr.Load(); v != nil {
		t.Fatal(v)
	}
	return m
}

// minEvents is the fewest reference events a window needs for its shares
// to mean anything.
const minEvents = 50

// shareSlack is how far a replica's share of the events may be from its
// share of the driver's writes: the window's edges cut the events of a
// write (and of the owner's annotation that follows it) apart.
const shareSlack = 0.15

// check asserts each replica's share of the events: with the gate on,
// within shareSlack of its share of the driver's writes in the window (those to
// the objects of its shards: with few objects a range holds a few more
// or fewer than its part of the hash space), and all shares add up to
// one; its
// requests carried a shardSelector; with the gate off, every watch
// carried every event.
func (m measurement) check(t *testing.T, gateOn bool) {
	t.Helper()
	if m.ref.WatchEvents < minEvents {
		t.Errorf("N=%d: the reference watch saw %d events in the window, fewer than %d", len(m.ids), m.ref.WatchEvents, minEvents)
		return
	}
	if m.moved {
		t.Errorf("N=%d: a shard changed owner or token during the window", len(m.ids))
	}
	sum := 0.0
	defer func() {
		if gateOn && (sum < 0.9 || sum > 1.1) {
			t.Errorf("N=%d: the replicas' watches carried %.2f of the events together, want 1 (each event to its owner only)", len(m.ids), sum)
		}
	}()
	for _, id := range m.ids {
		c := m.counts[id]
		share := float64(c.WatchEvents) / float64(m.ref.WatchEvents)
		part := float64(m.owned[id]) / shards
		if gateOn {
			if want := m.expected[id]; share > want+shareSlack || share < want-shareSlack {
				t.Errorf("N=%d, %s owns %d of %d shards (%.2f of the hash space): its watches carried %.2f of the events, want its share of the writes, %.2f, within %.2f",
					len(m.ids), id, m.owned[id], shards, part, share, want, shareSlack)
			}
			sum += share
		} else if share < 0.9*float64(m.owned[id]) {
			t.Errorf("N=%d, gate off, %s: its %d watches carried %.2f× the events, want every event on each (%d×)", len(m.ids), id, m.owned[id], share, m.owned[id])
		}
		sharded := false
		for _, s := range c.Selectors {
			if strings.HasPrefix(s, "shardRange(object.metadata.uid, ") {
				sharded = true
			}
		}
		if !sharded {
			t.Errorf("%s listed and watched ConfigMaps with shardSelectors %q, want shardRange(object.metadata.uid, ...)", id, c.Selectors)
		}
	}
}

func (m measurement) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "N=%d: reference watch %d events (%d bytes, %s);", len(m.ids), m.ref.WatchEvents, m.ref.WatchBytes, m.ref.Stream)
	for _, id := range m.ids {
		c := m.counts[id]
		fmt.Fprintf(&b, " %s (%d shards, %.2f of the writes) %d events = %.2f, %d bytes = %.2f;", id, m.owned[id], m.expected[id], c.WatchEvents,
			float64(c.WatchEvents)/float64(max(1, m.ref.WatchEvents)), c.WatchBytes, float64(c.WatchBytes)/float64(max(1, m.ref.WatchBytes)))
	}
	return b.String()
}

// driver creates, updates and deletes labelled ConfigMaps, as the admin,
// straight at the API server, at a steady pace; each carries
// data.version, bumped by every update.
type driver struct {
	stopFn context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	versions map[string]int       // the surviving objects' latest version
	uids     map[string]types.UID // of every object created
	ops      []op
	errs     []string
}

// op is one write of the driver: when it returned, and the shard of its
// object.
type op struct {
	at    time.Time
	shard int
}

// driveEvery paces the driver: 25 writes a second.
const driveEvery = 40 * time.Millisecond

// driverTarget is about how many objects the driver keeps around:
// enough that the hash spreads them over the shards within a few per
// cent.
const driverTarget = 80

func (e *env) drive(t *testing.T) *driver {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &driver{stopFn: cancel, done: make(chan struct{}), versions: map[string]int{}, uids: map[string]types.UID{}}
	cms := e.admin.CoreV1().ConfigMaps(e.ns)
	rng := rand.New(rand.NewPCG(uint64(nsCounter.Load()), 23))
	go func() {
		defer close(d.done)
		next := 0
		tick := time.NewTicker(driveEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			d.mu.Lock()
			names := make([]string, 0, len(d.versions))
			for n := range d.versions {
				names = append(names, n)
			}
			d.mu.Unlock()
			sort.Strings(names)
			p := rng.Float64()
			var err error
			switch {
			case len(names) < driverTarget/2 || p < 0.2:
				name := fmt.Sprintf("obj-%d", next)
				next++
				var cm *corev1.ConfigMap
				cm, err = cms.Create(ctx, &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{label: "1"}},
					Data:       map[string]string{"version": "1"},
				}, metav1.CreateOptions{})
				if err == nil {
					d.mu.Lock()
					d.uids[name] = cm.UID
					d.mu.Unlock()
					d.set(name, 1)
				}
			case p < 0.35 && len(names) > driverTarget/2:
				name := names[rng.IntN(len(names))]
				err = cms.Delete(ctx, name, metav1.DeleteOptions{})
				if err == nil {
					d.del(name)
				}
			default:
				name := names[rng.IntN(len(names))]
				d.mu.Lock()
				v := d.versions[name] + 1
				d.mu.Unlock()
				patch := fmt.Sprintf(`{"data":{"version":%q}}`, strconv.Itoa(v))
				_, err = cms.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
				if err == nil {
					d.set(name, v)
				}
			}
			if err != nil && ctx.Err() == nil {
				d.mu.Lock()
				d.errs = append(d.errs, err.Error())
				d.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		d.stopFn()
		<-d.done
	})
	return d
}

func (d *driver) set(name string, v int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.versions[name] = v
	d.ops = append(d.ops, op{time.Now(), shardOf(d.uids[name])})
}

func (d *driver) del(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.versions, name)
	d.ops = append(d.ops, op{time.Now(), shardOf(d.uids[name])})
}

// opsPerShard counts the writes made between from and to, by shard.
func (d *driver) opsPerShard(from, to time.Time) (per [shards]int, total int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range d.ops {
		if !o.at.Before(from) && o.at.Before(to) {
			per[o.shard]++
			total++
		}
	}
	return per, total
}

// stop stops the driver and returns how many writes it made.
func (d *driver) stop(t *testing.T) int {
	t.Helper()
	d.stopFn()
	testwait.Recv(t, d.done, "the driver to stop")
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.errs) > 0 {
		t.Errorf("%d driver writes failed, e.g. %s", len(d.errs), d.errs[0])
	}
	return len(d.ops)
}

// shardOf is the shard whose range holds uid's hash: range i is
// [floor(i·2^64/K), floor((i+1)·2^64/K)), as ctrl.NewRange makes it.
func shardOf(uid types.UID) int {
	h, err := strconv.ParseUint(sharding.HashField(string(uid)), 16, 64)
	if err != nil {
		panic(err)
	}
	i := shards - 1
	for i > 0 {
		lo, _ := bits.Div64(uint64(i), 0, shards)
		if h >= lo {
			break
		}
		i--
	}
	return i
}

// waitConverged waits until every surviving object carries the
// annotations of its latest version, written by its shard's owner with
// the shard's token, and no deleted object is left; it returns the
// surviving objects.
func (e *env) waitConverged(t *testing.T, d *driver, ids ...string) map[string]int {
	t.Helper()
	d.mu.Lock()
	want := make(map[string]int, len(d.versions))
	for k, v := range d.versions {
		want[k] = v
	}
	d.mu.Unlock()
	deadline := time.Now().Add(guard)
	for {
		var bad []string
		list, err := e.admin.CoreV1().ConfigMaps(e.ns).List(testCtx(t), metav1.ListOptions{LabelSelector: label})
		if err != nil {
			t.Fatal(err)
		}
		tb, _ := e.table(t)
		seen := map[string]bool{}
		for _, cm := range list.Items {
			seen[cm.Name] = true
			v, ok := want[cm.Name]
			if !ok {
				bad = append(bad, cm.Name+" was deleted but exists")
				continue
			}
			slot := tb.Shards[shardOf(cm.UID)]
			a := cm.Annotations
			if cm.Data["version"] != strconv.Itoa(v) || a[annObserved] != strconv.Itoa(v) ||
				a[annOwner] != slot.Owner || a[annToken] != strconv.FormatInt(slot.Token, 10) {
				bad = append(bad, fmt.Sprintf("%s: version %s observed %q by %q with token %q; want %d by %q with token %d (shard %d)",
					cm.Name, cm.Data["version"], a[annObserved], a[annOwner], a[annToken], v, slot.Owner, slot.Token, shardOf(cm.UID)))
			}
		}
		for name := range want {
			if !seen[name] {
				bad = append(bad, name+" is missing")
			}
		}
		if len(bad) == 0 {
			return want
		}
		if time.Now().After(deadline) {
			sort.Strings(bad)
			t.Fatalf("%d of %d objects not reconciled to their latest version by their owner (%v) within %v, e.g.:\n%s",
				len(bad), len(want), ids, guard, strings.Join(bad[:min(len(bad), 5)], "\n"))
		}
		time.Sleep(pollEvery)
	}
}

// checkFallback checks the replica's log and metric of the client-side
// fallback: present exactly when the gate is off.
func (e *env) checkFallback(t *testing.T, r *replica, gateOn bool) {
	t.Helper()
	logged := strings.Contains(r.p.Output(), fallbackLog)
	if logged == gateOn {
		t.Errorf("%s: fallback logged = %v with the gate on = %v; want the log line %q exactly when the gate is off", r.name, logged, gateOn, fallbackLog)
	}
	resp, err := http.Get("http://" + r.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	value := ""
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, fallbackMetric+"{") {
			value = l[strings.LastIndexByte(l, ' ')+1:]
		}
	}
	want := "1"
	if gateOn {
		want = "0"
	}
	if value != want {
		t.Errorf("%s: %s = %q, want %s (gate on = %v)", r.name, fallbackMetric, value, want, gateOn)
	}
}

// rec is one reconcile from the replicas' records.
type rec struct {
	id         string
	shard      int
	token      int64
	object     string // namespace/name
	uid        string
	start, end time.Time
}

// history is every replica's record.
type history struct {
	recs      []rec
	contended []string
}

// history reads every record file (the replicas have exited: their
// buffers are flushed).
func (e *env) history(t *testing.T) history {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(e.dir, "*.record"))
	if err != nil {
		t.Fatal(err)
	}
	var h history
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) >= 2 && fs[1] == "CONTENDED" {
				h.contended = append(h.contended, sc.Text())
				continue
			}
			if len(fs) != 8 {
				t.Errorf("%s: malformed line %q", path, sc.Text())
				continue
			}
			sh, err1 := strconv.Atoi(fs[1])
			tok, err2 := strconv.ParseInt(fs[2], 10, 64)
			s, err3 := strconv.ParseInt(fs[6], 10, 64)
			en, err4 := strconv.ParseInt(fs[7], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
				t.Errorf("%s: malformed line %q", path, sc.Text())
				continue
			}
			h.recs = append(h.recs, rec{id: fs[0], shard: sh, token: tok, object: fs[3], uid: fs[4], start: time.Unix(0, s), end: time.Unix(0, en)})
		}
		f.Close()
	}
	sort.Slice(h.recs, func(i, j int) bool { return h.recs[i].start.Before(h.recs[j].start) })
	return h
}

// verdict is what the outside checker found.
type verdict struct {
	objects, terms                int
	objectOverlaps, shardOverlaps int
}

// check is the outside checker: it proves from the records alone that no
// object was reconciled by two replicas at one instant (per object, no
// two reconciles overlap), that each shard's terms (runs of one owner
// and token) follow each other without overlapping, with tokens growing,
// and that no reconcile found another holding the object's lock.
func (h history) check(t *testing.T) verdict {
	t.Helper()
	var v verdict
	for _, c := range h.contended {
		t.Errorf("two replicas reconciled one object at once: %q", c)
	}
	if len(h.recs) == 0 {
		t.Fatal("no reconcile was recorded")
	}
	byObject := map[string][]rec{}
	byShard := map[int][]rec{}
	for _, r := range h.recs {
		byObject[r.uid] = append(byObject[r.uid], r)
		byShard[r.shard] = append(byShard[r.shard], r)
		if r.shard < 0 || r.shard >= shards || r.token < 0 {
			t.Errorf("%s reconciled %s without a shard's term: shard %d, token %d", r.id, r.object, r.shard, r.token)
		}
		if want := shardOf(types.UID(r.uid)); r.shard != want {
			t.Errorf("%s reconciled %s (shard %d) in shard %d's controllers", r.id, r.object, want, r.shard)
		}
	}
	v.objects = len(byObject)
	for _, rs := range byObject { // sorted by start
		var last rec
		for i, r := range rs {
			if i > 0 && r.start.Before(last.end) {
				v.objectOverlaps++
				t.Errorf("%s: %s reconciled it %v–%v (token %d) while %s did %v–%v (token %d)",
					r.object, r.id, r.start.Format(stamp), r.end.Format(stamp), r.token, last.id, last.start.Format(stamp), last.end.Format(stamp), last.token)
			}
			if i == 0 || r.end.After(last.end) {
				last = r
			}
		}
	}
	for sh, rs := range byShard {
		var prevEnd time.Time // the end of every earlier term's reconciles
		cur := rs[0]
		curEnd := cur.end
		v.terms++
		for _, r := range rs[1:] {
			if r.id == cur.id && r.token == cur.token {
				if r.end.After(curEnd) {
					curEnd = r.end
				}
				if r.start.Before(prevEnd) {
					v.shardOverlaps++
					t.Errorf("shard %d: %s (token %d) reconciled at %v, before the previous term ended at %v", sh, r.id, r.token, r.start.Format(stamp), prevEnd.Format(stamp))
				}
				continue
			}
			if r.token <= cur.token {
				t.Errorf("shard %d: %s with token %d after %s with token %d: tokens must grow with each term", sh, r.id, r.token, cur.id, cur.token)
			}
			if curEnd.After(prevEnd) {
				prevEnd = curEnd
			}
			if r.start.Before(prevEnd) {
				v.shardOverlaps++
				t.Errorf("shard %d: %s (token %d) began at %v, before %s (token %d) ended at %v", sh, r.id, r.token, r.start.Format(stamp), cur.id, cur.token, prevEnd.Format(stamp))
			}
			cur, curEnd = r, r.end
			v.terms++
		}
	}
	return v
}

const stamp = "15:04:05.000000"

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}
