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
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/bench/internal/candidate"
	"github.com/elector-dev/elector/bench/internal/stats"
	"github.com/elector-dev/elector/test/controlplane"
)

// ScenarioOverload names the overload scenario: the leader's renewals
// while another tenant floods a kube-apiserver with small inflight limits,
// with and without deploy/cluster/priority's FlowSchema.
const ScenarioOverload = "overload"

// The overload scenario's fixed parameters (the flood's length and the
// repetitions are Options). The inflight limits are small so that a flood
// a 2-core machine can drive saturates them; API Priority and Fairness
// shares their sum among its priority levels.
const (
	overloadInflight         = 10 // --max-requests-inflight
	overloadMutatingInflight = 5  // --max-mutating-requests-inflight
	overloadObjects          = 2000
	overloadObjectBytes      = 2048
	overloadListLoops        = 2 // per flooding ServiceAccount
	overloadWriteLoops       = 1 // per flooding ServiceAccount
	overloadCandidates       = 2
	// defaultOverloadFlows is the number of flooding ServiceAccounts. APF
	// queues each user apart and serves the queues in turn, so one flooding
	// user barely delays another's rare request; many tenants' Pods, each
	// its own user, fill the level's queues as in kubernetes#106725.
	defaultOverloadFlows = 48
	overloadSeedWorkers  = 16
	// overloadCooldown keeps the candidates running after the flood, so a
	// tenure the flood doomed is counted when it ends.
	overloadCooldown = 5 * time.Second
	overloadWarmup   = 2 * time.Second
	overloadFloodReq = 30 * time.Second // a flooder's request timeout
	overloadTenantNS = "tenant"
	overloadAppNS    = "app"
	overloadElectorS = "elector"
	overloadPriority = "cluster/priority" // under deploy/
)

// The priority levels the scenario expects a Lease renewal at.
const (
	levelLeaderElection = "leader-election"
	levelWorkloadLow    = "workload-low"
)

// overloadTiming is the candidates' timing: elector's defaults.
var overloadTiming = candidate.Common

// overloadRun is one flood with or without the FlowSchema.
type overloadRun struct {
	flowSchema bool
	rep        int
	level      string          // where the API server put the elector's Lease GET
	renewals   []time.Duration // every Lease update begun during the flood
	failed     int             // of which returned an error
	failures   map[string]int  // by kind
	lost       int             // tenures that ended while the candidate ran
	changes    int             // holder changes during the flood and cooldown
	flood      time.Duration
	lists      int64 // flood LISTs completed
	listErrs   int64
	writes     int64 // flood PATCHes completed
	writeErrs  int64
	listLat    []time.Duration // completed flood LISTs
	err        error
}

// overloadResult is the scenario's outcome.
type overloadResult struct {
	runs    []overloadRun
	seats   map[string]string // nominal seats of the levels, from the API server's metrics
	flows   int
	started time.Time
	load    [2]string // load average at start and end
	err     error
}

func runOverload(ctx context.Context, e *env, res *results) error {
	r := &overloadResult{flows: e.opts.OverloadFlows, started: time.Now()}
	r.load[0] = loadAvg()
	res.overload = r
	r.err = measureOverload(ctx, e, r)
	r.load[1] = loadAvg()
	return r.err
}

// overloadEnv is the scenario's own control plane and clients.
type overloadEnv struct {
	e        *env
	cp       *controlplane.ControlPlane
	admin    kubernetes.Interface
	levels   map[string]string // priority level UID → name
	fs       []*flowcontrolv1.FlowSchema
	elector  *rest.Config // the elector ServiceAccount's
	flooders []*rest.Config
	seq      int
}

func measureOverload(ctx context.Context, e *env, r *overloadResult) error {
	e.logf("overload: starting a control plane with --max-requests-inflight=%d --max-mutating-requests-inflight=%d", overloadInflight, overloadMutatingInflight)
	cp, err := controlplane.Start(ctx, controlplane.Options{Out: e.log, APIServerArgs: []string{
		fmt.Sprintf("--max-requests-inflight=%d", overloadInflight),
		fmt.Sprintf("--max-mutating-requests-inflight=%d", overloadMutatingInflight),
	}})
	if err != nil {
		return err
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			e.logf("overload: stopping the control plane: %v", err)
		}
	}()
	o := &overloadEnv{e: e, cp: cp}
	adminCfg := cp.AdminConfig()
	adminCfg.QPS, adminCfg.Burst = -1, 0 // the seeding; the admin is exempt from APF
	if o.admin, err = kubernetes.NewForConfig(adminCfg); err != nil {
		return fmt.Errorf("unable to create an admin client: %w", err)
	}
	if err := o.setup(ctx, r.flows); err != nil {
		return err
	}
	r.seats = o.nominalSeats(ctx)
	// ABBA: each pair of repetitions runs both orders.
	for rep := range e.opts.OverloadReps {
		order := []bool{false, true}
		if rep%2 == 1 {
			order = []bool{true, false}
		}
		for _, with := range order {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			run := o.run(ctx, with, rep+1)
			if run.err != nil {
				e.logf("overload: run failed: %v", run.err)
			}
			r.runs = append(r.runs, run)
		}
	}
	return nil
}

// setup creates the namespaces, RBAC, ServiceAccounts and the tenant's
// objects, and renders the FlowSchema.
func (o *overloadEnv) setup(ctx context.Context, flows int) error {
	var err error
	if o.levels, err = o.priorityLevels(ctx); err != nil {
		return err
	}
	root, err := moduleDir(ctx, "github.com/elector-dev/elector")
	if err != nil {
		return err
	}
	if o.fs, err = renderFlowSchemas(filepath.Join(root, "deploy", overloadPriority)); err != nil {
		return err
	}
	for _, ns := range []string{overloadTenantNS, overloadAppNS} {
		if _, err := o.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("unable to create namespace %s: %w", ns, err)
		}
	}
	rbac := o.admin.RbacV1()
	if _, err := rbac.Roles(overloadTenantNS).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "flood"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "patch"}}},
	}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("unable to create the tenant's Role: %w", err)
	}
	if _, err := rbac.RoleBindings(overloadTenantNS).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "flood"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "flood"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:serviceaccounts:" + overloadTenantNS}},
	}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("unable to create the tenant's RoleBinding: %w", err)
	}
	if _, err := rbac.Roles(overloadAppNS).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: overloadElectorS},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{coordinationv1.GroupName}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update"}}},
	}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("unable to create the elector's Role: %w", err)
	}
	if _, err := rbac.RoleBindings(overloadAppNS).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: overloadElectorS},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: overloadElectorS},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: overloadAppNS, Name: overloadElectorS}},
	}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("unable to create the elector's RoleBinding: %w", err)
	}
	if o.elector, err = o.cp.ServiceAccountConfig(ctx, overloadAppNS, overloadElectorS); err != nil {
		return err
	}
	for i := range flows {
		cfg, err := o.cp.ServiceAccountConfig(ctx, overloadTenantNS, fmt.Sprintf("flood-%d", i))
		if err != nil {
			return err
		}
		cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limit: a flood
		cfg.Timeout = overloadFloodReq
		o.flooders = append(o.flooders, ownConnection(cfg))
	}
	o.e.logf("overload: creating %d ConfigMaps of %d bytes in namespace %s", overloadObjects, overloadObjectBytes, overloadTenantNS)
	return o.seed(ctx)
}

// nominalSeats reads the nominal concurrency limits of the two levels
// from the API server's metrics; a level it cannot read is left out
// (the report then omits it).
func (o *overloadEnv) nominalSeats(ctx context.Context) map[string]string {
	raw, err := o.admin.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		o.e.logf("overload: unable to read the API server's metrics: %v", err)
		return nil
	}
	return parseNominalSeats(string(raw))
}

// parseNominalSeats returns apiserver_flowcontrol_nominal_limit_seats of
// the leader-election and workload-low levels.
func parseNominalSeats(metrics string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(l, "apiserver_flowcontrol_nominal_limit_seats{") {
			continue
		}
		for _, level := range []string{levelLeaderElection, levelWorkloadLow} {
			if strings.Contains(l, `priority_level="`+level+`"`) {
				if f := strings.Fields(l); len(f) == 2 {
					out[level] = f[1]
				}
			}
		}
	}
	return out
}

// ownConnection gives cfg a transport of its own, as a separate Pod has:
// client-go otherwise shares one HTTP/2 connection among configs that
// differ only in their bearer token.
func ownConnection(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return c
}

// seed creates the tenant's ConfigMaps as the admin (exempt from APF).
func (o *overloadEnv) seed(ctx context.Context) error {
	payload := strings.Repeat("x", overloadObjectBytes)
	next := make(chan int)
	errs := make(chan error, overloadSeedWorkers)
	var wg sync.WaitGroup
	for range overloadSeedWorkers {
		wg.Go(func() {
			for i := range next {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("obj-%d", i)}, Data: map[string]string{"payload": payload}}
				if _, err := o.admin.CoreV1().ConfigMaps(overloadTenantNS).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					select {
					case errs <- fmt.Errorf("unable to create ConfigMap %s: %w", cm.Name, err):
					default:
					}
				}
			}
		})
	}
	for i := range overloadObjects {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			return err
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// priorityLevels waits for the API server's suggested priority levels and
// returns their names by UID.
func (o *overloadEnv) priorityLevels(ctx context.Context) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		list, err := o.admin.FlowcontrolV1().PriorityLevelConfigurations().List(ctx, metav1.ListOptions{})
		if err == nil {
			levels := map[string]string{}
			names := map[string]bool{}
			for _, p := range list.Items {
				levels[string(p.UID)] = p.Name
				names[p.Name] = true
			}
			if names[levelLeaderElection] && names[levelWorkloadLow] {
				return levels, nil
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("they are not in the list")
			}
			return nil, fmt.Errorf("the API server has not created the priority levels %s and %s within %v (last error: %w)", levelLeaderElection, levelWorkloadLow, readyTimeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// renderFlowSchemas builds the kustomization in dir as `kubectl kustomize`
// would and returns its FlowSchemas; any other kind is an error (the
// component is meant to hold FlowSchemas only).
func renderFlowSchemas(dir string) ([]*flowcontrolv1.FlowSchema, error) {
	opts := krusty.MakeDefaultOptions()
	rm, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("unable to render %s: %w", dir, err)
	}
	var out []*flowcontrolv1.FlowSchema
	for _, res := range rm.Resources() {
		if res.GetKind() != "FlowSchema" {
			return nil, fmt.Errorf("%s holds a %s; the overload benchmark applies FlowSchemas only", dir, res.GetKind())
		}
		m, err := res.Map()
		if err != nil {
			return nil, fmt.Errorf("unable to decode FlowSchema %s of %s: %w", res.GetName(), dir, err)
		}
		fs := &flowcontrolv1.FlowSchema{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, fs); err != nil {
			return nil, fmt.Errorf("unable to decode FlowSchema %s of %s: %w", res.GetName(), dir, err)
		}
		out = append(out, fs)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no FlowSchema", dir)
	}
	return out, nil
}

// setFlowSchema creates or deletes the component's FlowSchemas and waits
// until the API server classifies the elector's Lease GET accordingly;
// it returns the priority level's name.
func (o *overloadEnv) setFlowSchema(ctx context.Context, with bool) (string, error) {
	api := o.admin.FlowcontrolV1().FlowSchemas()
	for _, fs := range o.fs {
		if with {
			if _, err := api.Create(ctx, fs.DeepCopy(), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return "", fmt.Errorf("unable to create FlowSchema %s: %w", fs.Name, err)
			}
		} else if err := api.Delete(ctx, fs.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("unable to delete FlowSchema %s: %w", fs.Name, err)
		}
	}
	want := levelWorkloadLow
	if with {
		want = levelLeaderElection
	}
	hc, err := rest.HTTPClientFor(o.elector)
	if err != nil {
		return "", fmt.Errorf("unable to create an HTTP client: %w", err)
	}
	url := o.elector.Host + "/apis/coordination.k8s.io/v1/namespaces/" + overloadAppNS + "/leases/classify"
	wctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var got string
	for {
		got, err = o.classify(wctx, hc, url)
		if err == nil && got == want {
			return got, nil
		}
		select {
		case <-wctx.Done():
			if err == nil {
				err = errors.New("none")
			}
			return got, fmt.Errorf("the elector ServiceAccount's Lease GET runs at %q after %v, want %s (last error: %w)", got, readyTimeout, want, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// classify GETs url and returns the name of the priority level the API
// server ran it at (the answer may be 404: classification comes first).
func (o *overloadEnv) classify(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	uid := resp.Header.Get("X-Kubernetes-PF-PriorityLevel-UID")
	if uid == "" {
		return "", fmt.Errorf("GET %s: %s without an X-Kubernetes-PF-PriorityLevel-UID header", url, resp.Status)
	}
	if name, ok := o.levels[uid]; ok {
		return name, nil
	}
	return "uid " + uid, nil
}

// tenureTracker counts the candidates' tenures and their renewals.
type tenureTracker struct {
	mu        sync.Mutex
	leader    string
	changes   int
	lost      int
	counting  bool // lost tenures and changes count from the flood on
	measuring bool // renewals count during the flood
	renewals  []time.Duration
	failures  map[string]int
	leading   chan string
}

func (t *tenureTracker) started(id string) {
	t.mu.Lock()
	if t.counting && t.leader != "" && t.leader != id {
		t.changes++
	}
	t.leader = id
	t.mu.Unlock()
	select {
	case t.leading <- id:
	default:
	}
}

func (t *tenureTracker) ended() {
	t.mu.Lock()
	if t.counting {
		t.lost++
	}
	t.mu.Unlock()
}

func (t *tenureTracker) renewal(d time.Duration, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.measuring {
		return
	}
	t.renewals = append(t.renewals, d)
	if err != nil {
		t.failures[failureKind(err)]++
	}
}

func failureKind(err error) string {
	switch {
	case apierrors.IsTooManyRequests(err):
		return "429"
	case errors.Is(err, context.DeadlineExceeded) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || strings.Contains(err.Error(), "deadline exceeded"):
		return "timeout"
	case apierrors.IsConflict(err):
		return "conflict"
	default:
		return "other"
	}
}

// timedLeases times every Update, the leader's renewal (and a follower's
// acquisition).
type timedLeases struct {
	coordinationv1client.LeaseInterface
	t *tenureTracker
}

func (l timedLeases) Update(ctx context.Context, lease *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	began := time.Now()
	out, err := l.LeaseInterface.Update(ctx, lease, opts)
	l.t.renewal(time.Since(began), err)
	return out, err
}

// run is one flood with or without the FlowSchema.
func (o *overloadEnv) run(ctx context.Context, with bool, rep int) (run overloadRun) {
	run = overloadRun{flowSchema: with, rep: rep, flood: o.e.opts.OverloadFlood}
	o.seq++
	lease := fmt.Sprintf("overload-%d", o.seq)
	o.e.logf("overload: run %d (FlowSchema: %v), Lease %s", o.seq, with, lease)
	if run.level, run.err = o.setFlowSchema(ctx, with); run.err != nil {
		return run
	}
	t := &tenureTracker{failures: map[string]int{}, leading: make(chan string, 1)}
	cctx, stopCandidates := context.WithCancel(ctx)
	var candidates sync.WaitGroup
	defer func() {
		stopCandidates()
		candidates.Wait()
	}()
	for i := range overloadCandidates {
		client, err := coordinationv1client.NewForConfig(ownConnection(o.elector))
		if err != nil {
			run.err = fmt.Errorf("unable to create a Lease client: %w", err)
			return run
		}
		el, err := elector.New(elector.Config{
			Leases:        timedLeases{client.Leases(overloadAppNS), t},
			Namespace:     overloadAppNS,
			Name:          lease,
			Identity:      fmt.Sprintf("candidate-%d", i),
			LeaseDuration: overloadTiming.Lease,
			RenewDeadline: overloadTiming.Renew,
			RetryPeriod:   overloadTiming.Retry,
			Logger:        slog.New(slog.DiscardHandler),
		})
		if err != nil {
			run.err = err
			return run
		}
		candidates.Go(func() {
			for cctx.Err() == nil {
				err := el.Run(cctx, func(lctx context.Context, term elector.Term) error {
					t.started(term.Identity)
					<-lctx.Done()
					if cctx.Err() == nil {
						t.ended()
					}
					return nil
				})
				if err != nil && cctx.Err() == nil {
					sleepCtx(cctx, overloadTiming.Retry)
				}
			}
		})
	}
	select {
	case <-t.leading:
	case <-ctx.Done():
		run.err = ctx.Err()
		return run
	case <-time.After(readyTimeout):
		run.err = fmt.Errorf("no candidate led Lease %s/%s within %v", overloadAppNS, lease, readyTimeout)
		return run
	}
	sleepCtx(ctx, overloadWarmup)

	t.mu.Lock()
	t.counting, t.measuring = true, true
	t.mu.Unlock()
	f := o.flood(ctx, run.flood)
	t.mu.Lock()
	t.measuring = false
	t.mu.Unlock()
	sleepCtx(ctx, overloadCooldown)
	t.mu.Lock()
	t.counting = false
	run.renewals, run.failures, run.lost, run.changes = t.renewals, t.failures, t.lost, t.changes
	t.mu.Unlock()
	for _, n := range run.failures {
		run.failed += n
	}
	run.lists, run.listErrs, run.writes, run.writeErrs, run.listLat = f.lists.Load(), f.listErrs.Load(), f.writes.Load(), f.writeErrs.Load(), f.listLat
	return run
}

type floodCounts struct {
	lists, listErrs, writes, writeErrs atomic.Int64
	mu                                 sync.Mutex
	listLat                            []time.Duration
}

// flood runs every flooder's LIST and PATCH loops for d and returns what
// they completed.
func (o *overloadEnv) flood(ctx context.Context, d time.Duration) *floodCounts {
	f := &floodCounts{}
	fctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for i, cfg := range o.flooders {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			f.listErrs.Add(1)
			continue
		}
		for range overloadListLoops {
			wg.Go(func() {
				for fctx.Err() == nil {
					began := time.Now()
					body, err := cs.CoreV1().RESTClient().Get().Namespace(overloadTenantNS).Resource("configmaps").Stream(fctx)
					if err == nil {
						_, err = io.Copy(io.Discard, body)
						body.Close()
					}
					if fctx.Err() != nil {
						return
					}
					if err != nil {
						f.listErrs.Add(1)
						sleepCtx(fctx, 100*time.Millisecond)
						continue
					}
					f.lists.Add(1)
					f.mu.Lock()
					f.listLat = append(f.listLat, time.Since(began))
					f.mu.Unlock()
				}
			})
		}
		for w := range overloadWriteLoops {
			rng := rand.New(rand.NewPCG(uint64(i), uint64(w)))
			wg.Go(func() {
				for fctx.Err() == nil {
					name := fmt.Sprintf("obj-%d", rng.IntN(overloadObjects))
					patch := fmt.Sprintf(`{"data":{"writer":"%d-%d"}}`, i, rng.Int64())
					_, err := cs.CoreV1().ConfigMaps(overloadTenantNS).Patch(fctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
					if fctx.Err() != nil {
						return
					}
					if err != nil {
						f.writeErrs.Add(1)
						sleepCtx(fctx, 100*time.Millisecond)
						continue
					}
					f.writes.Add(1)
				}
			})
		}
	}
	<-fctx.Done()
	wg.Wait()
	return f
}

// ---- Report ----

// overloadHeading starts the scenario's section; bench --splice finds it
// by this prefix.
const overloadHeading = "## Overload: "

func renderOverload(m *md, r *results) {
	o := r.overload
	if o == nil {
		return
	}
	m.p("%sLease renewals while another tenant floods the API server", overloadHeading)
	m.p("")
	if len(r.opts.Only) > 0 {
		cmd := r.opts.Command
		if cmd == "" {
			cmd = "make bench"
		}
		mi := r.machine
		m.p("*From its own run:* `%s`, %s; %d CPUs (%s), %s, kube-apiserver %s; load average %s at start, %s at end.",
			cmd, o.started.UTC().Format("2006-01-02 15:04 MST"), mi.cpus, mi.cpuModel, mi.goVersion, controlplane.KubernetesVersion, o.load[0], o.load[1])
		m.p("")
	}
	seats := ""
	if o.seats[levelLeaderElection] != "" && o.seats[levelWorkloadLow] != "" {
		seats = fmt.Sprintf("; nominal seats from its metrics: %s for %s, %s for %s", o.seats[levelLeaderElection], levelLeaderElection, o.seats[levelWorkloadLow], levelWorkloadLow)
	}
	m.p("A kube-apiserver of its own with `--max-requests-inflight=%d --max-mutating-requests-inflight=%d` (API Priority and Fairness, on by default, shares their sum among its priority levels%s). "+
		"**The flood:** another tenant, %d ServiceAccounts of namespace `%s` (one APF flow each), each with %d loops LISTing all %d ConfigMaps of %d bytes (about %d MiB per LIST, JSON) and %d loop PATCHing a random one, no client-side rate limit, for %v. APF queues each user's requests apart and serves the queues in turn, so a single flooding user hardly delays another user's rare request; many Pods of other tenants, each its own user, fill a level's queues, as in kubernetes#106725. "+
		"**The leader:** %d in-process elector candidates of one Lease (elector's defaults %s, request timeout RenewDeadline/4), each with its own connection, authenticated as the ServiceAccount `%s/%s` (Role: Leases only). "+
		"**With** applies `deploy/%s` as written (rendered by kustomize); **without** deletes it; before each run the elector's Lease GET is classified by the `X-Kubernetes-PF-PriorityLevel-UID` header (the *level* column). "+
		"*Renewals*: every Lease update begun during the flood, timed around the client call (client-go's own 429 retries included), successes and failures (a renewal that timed out counts as elector's request timeout, %v); *lost tenures*: a leader function cancelled while its candidate ran, from the flood's start until %v after its end; *leader changes*: a different candidate started leading in that time. %d repetition(s) per variant, in ABBA order.",
		overloadInflight, overloadMutatingInflight, seats, o.flows, overloadTenantNS, overloadListLoops, overloadObjects, overloadObjectBytes,
		max(1, overloadObjects*overloadObjectBytes>>20), overloadWriteLoops, r.opts.OverloadFlood,
		overloadCandidates, overloadTiming, overloadAppNS, overloadElectorS, overloadPriority, overloadAPITimeout(), overloadCooldown, r.opts.OverloadReps)
	m.p("")
	if o.err != nil {
		m.p("**Failed:** %s", oneLine(o.err.Error()))
		m.p("")
	}
	m.header("FlowSchema", "level", "renewals", "p50", "p99", "max", "failed", "lost tenures", "leader changes", "flood LISTs/s", "flood LIST p50", "flood writes/s", "flood errors", "target", "met?")
	for _, with := range []bool{true, false} {
		var all []time.Duration
		var failed, lost, changes int
		var lists, writes, errs int64
		var flood time.Duration
		var lat []time.Duration
		levels := map[string]bool{}
		n := 0
		for _, run := range o.runs {
			if run.flowSchema != with || run.err != nil {
				continue
			}
			n++
			all = append(all, run.renewals...)
			failed += run.failed
			lost += run.lost
			changes += run.changes
			lists += run.lists
			writes += run.writes
			errs += run.listErrs + run.writeErrs
			flood += run.flood
			lat = append(lat, run.listLat...)
			levels[run.level] = true
		}
		name := "without"
		if with {
			name = "with"
		}
		if n == 0 {
			m.row(name, "", "", "", "", "", "", "", "", "", "", "", "", "", "failed")
			continue
		}
		s := stats.Summarize(all)
		target, v := "", noTarget
		if with {
			target = fmt.Sprintf("0 lost, p99 < %v", overloadTiming.Retry)
			v = check(lost == 0 && s.N > 0 && s.P99 < overloadTiming.Retry)
			m.miss(v, "overload")
		}
		var lv []string
		for l := range levels {
			lv = append(lv, l)
		}
		m.row(name, strings.Join(lv, ", "), fmt.Sprint(s.N), dur(s.P50), dur(s.P99), dur(s.Max), fmt.Sprint(failed), fmt.Sprint(lost), fmt.Sprint(changes),
			fmt.Sprintf("%.1f", stats.Rate(lists, flood)), dur(stats.Summarize(lat).P50), fmt.Sprintf("%.1f", stats.Rate(writes, flood)), fmt.Sprint(errs), target, v.String())
	}
	m.p("")
	overloadSummary(m, o)
	m.p("Per run:")
	m.p("")
	m.header("run", "FlowSchema", "renewals", "p50", "p99", "max", "failed (by kind)", "lost tenures", "leader changes", "flood LISTs", "flood writes", "flood errors")
	for i, run := range o.runs {
		name := "without"
		if run.flowSchema {
			name = "with"
		}
		if run.err != nil {
			m.row(fmt.Sprint(i+1), name, "failed: "+oneLine(run.err.Error()), "", "", "", "", "", "", "", "", "")
			continue
		}
		s := stats.Summarize(run.renewals)
		m.row(fmt.Sprint(i+1), name, fmt.Sprint(s.N), dur(s.P50), dur(s.P99), dur(s.Max), failures(run.failed, run.failures), fmt.Sprint(run.lost), fmt.Sprint(run.changes),
			fmt.Sprint(run.lists), fmt.Sprint(run.writes), fmt.Sprint(run.listErrs+run.writeErrs))
	}
	m.p("")
	if o.runs != nil {
		m.p("With fewer than 100 renewals the nearest-rank p99 is the maximum. The flood's LIST p50 shows how long the tenant's own requests waited and ran: the inflight limits, not the machine, bound the API server's work.")
		m.p("")
	}
}

func failures(n int, by map[string]int) string {
	if n == 0 {
		return "0"
	}
	var parts []string
	for _, k := range []string{"timeout", "429", "conflict", "other"} {
		if by[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", by[k], k))
		}
	}
	return fmt.Sprintf("%d (%s)", n, strings.Join(parts, ", "))
}

// overloadAPITimeout is elector's default request timeout at
// overloadTiming (Config.APITimeout).
func overloadAPITimeout() time.Duration {
	return min(max(overloadTiming.Renew/4, time.Second), overloadTiming.Renew/2)
}

// overloadSummary says in words what the runs show, per variant.
func overloadSummary(m *md, o *overloadResult) {
	for _, with := range []bool{true, false} {
		var renewals, failed, timeouts, throttled, lost, changes, runs int
		for _, run := range o.runs {
			if run.flowSchema != with || run.err != nil {
				continue
			}
			runs++
			renewals += len(run.renewals)
			failed += run.failed
			timeouts += run.failures["timeout"]
			throttled += run.failures["429"]
			lost += run.lost
			changes += run.changes
		}
		if runs == 0 {
			continue
		}
		name := "Without the FlowSchema"
		if with {
			name = "With the FlowSchema"
		}
		m.p("- %s: %d of %d renewals failed (%d timed out, %d rejected with 429), %d tenures lost and %d leader changes in %d run(s).",
			name, failed, renewals, timeouts, throttled, lost, changes, runs)
	}
	m.p("")
}
