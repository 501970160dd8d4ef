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

// Package suite runs the benchmark scenarios for elector (library and
// sidecar) and client-go's tools/leaderelection against one real control
// plane, in one run, and writes the results as Markdown.
package suite

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/elector-dev/elector/bench/internal/candidate"
	"github.com/elector-dev/elector/bench/internal/countproxy"
	"github.com/elector-dev/elector/test/controlplane"
)

// Scenario names, for Options.Only.
const (
	ScenarioHandoff   = "handoff"
	ScenarioPlanned   = "planned"
	ScenarioCrash     = "crash"
	ScenarioLoad      = "load"
	ScenarioFootprint = "footprint"
	ScenarioScale     = "scale"
	ScenarioCtrl      = "ctrl"
)

// Scenarios lists every scenario in run order.
var Scenarios = []string{ScenarioHandoff, ScenarioPlanned, ScenarioCrash, ScenarioLoad, ScenarioFootprint, ScenarioScale, ScenarioCtrl, ScenarioSharding, ScenarioOverload, ScenarioShardedCtrl}

// Options configure a run. Zero values are not defaults: use Full or Quick.
type Options struct {
	HandoffTrials int           // graceful and planned handoff trials per variant
	CrashTrials   int           // crash takeover trials per variant
	StartTrials   int           // start-to-first-leader trials per sidecar
	LoadSizes     []int         // candidates per election in the API load scenario
	LoadWarmup    time.Duration // after all candidates know the leader
	LoadWindow    time.Duration // steady-state counting window
	Idle          time.Duration // footprint idle window
	ScaleN        int           // elections in one process
	ScaleWindow   time.Duration // scale counting window
	CtrlTrials    int           // controller-runtime SIGTERM handoff trials per variant
	ShardK        int           // shards in the sharding scenario
	ShardSteps    []int         // replica counts in turn
	ShardWarmup   time.Duration // after a step is balanced (or timed out)
	ShardWindow   time.Duration // steady-state counting window per step
	OverloadFlood time.Duration // each overload run's flood
	OverloadReps  int           // overload runs per variant (with and without the FlowSchema)
	OverloadFlows int           // flooding ServiceAccounts (APF flows)
	// ShardedObjects is the number of ConfigMaps of the
	// sharded-controllers scenario, ShardedUpdates how many of them are
	// updated while the watch traffic is counted.
	ShardedObjects int
	ShardedUpdates int
	Only           []string // scenarios to run; all when empty
	Quick          bool     // recorded in the report
	Command        string   // the command line, for the report
}

// Full is the configuration of `make bench`: about 15 minutes on two
// cores.
func Full() Options {
	return Options{
		HandoffTrials:  30,
		CrashTrials:    10,
		StartTrials:    5,
		LoadSizes:      []int{3, 10, 50},
		LoadWarmup:     5 * time.Second,
		LoadWindow:     30 * time.Second,
		Idle:           60 * time.Second,
		ScaleN:         1000,
		ScaleWindow:    30 * time.Second,
		CtrlTrials:     10,
		ShardK:         256,
		ShardSteps:     []int{2, 8, 3},
		ShardWarmup:    5 * time.Second,
		ShardWindow:    30 * time.Second,
		OverloadFlood:  45 * time.Second,
		OverloadReps:   2,
		OverloadFlows:  defaultOverloadFlows,
		ShardedObjects: 10000,
		ShardedUpdates: 1000,
	}
}

// Quick is a smoke test of every scenario in about three minutes; its
// numbers are not meant to be published.
func Quick() Options {
	return Options{
		HandoffTrials:  5,
		CrashTrials:    3,
		StartTrials:    2,
		LoadSizes:      []int{3, 10, 50},
		LoadWarmup:     5 * time.Second,
		LoadWindow:     10 * time.Second,
		Idle:           15 * time.Second,
		ScaleN:         100,
		ScaleWindow:    10 * time.Second,
		CtrlTrials:     3,
		ShardK:         256,
		ShardSteps:     []int{2, 8, 3},
		ShardWarmup:    2 * time.Second,
		ShardWindow:    10 * time.Second,
		OverloadFlood:  15 * time.Second,
		OverloadReps:   1,
		OverloadFlows:  defaultOverloadFlows,
		ShardedObjects: 2000,
		ShardedUpdates: 300,
		Quick:          true,
	}
}

func (o Options) runs(scenario string) bool {
	if len(o.Only) == 0 {
		return true
	}
	for _, s := range o.Only {
		if s == scenario {
			return true
		}
	}
	return false
}

// env is what every scenario shares.
type env struct {
	opts   Options
	log    io.Writer
	cp     *controlplane.ControlPlane
	admin  *rest.Config
	kube   kubernetes.Interface // admin, straight at the API server
	proxy  *countproxy.Proxy
	procs  *procs
	bins   binaries
	dir    string // temporary files: binaries, kubeconfigs
	direct string // admin kubeconfig straight at the API server

	mu      sync.Mutex
	nsSeq   int
	rng     *rand.Rand
	timings map[time.Duration]candidate.Timing // elector sidecar's, by --ttl
}

// Run runs the benchmark and returns the report as Markdown, and whether
// any scenario or variant failed (the report says which). Progress goes
// to log. Every process it starts is stopped before it returns, also when
// ctx is cancelled.
func Run(ctx context.Context, opts Options, log io.Writer) (report string, failed bool, err error) {
	res := &results{opts: opts, started: time.Now()}
	dir, err := os.MkdirTemp("", "elector-bench-")
	if err != nil {
		return "", false, fmt.Errorf("unable to create a temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)

	e := &env{
		opts: opts, log: log, procs: newProcs(), dir: dir, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)),
		timings: map[time.Duration]candidate.Timing{},
	}
	defer e.procs.killAll()

	res.machine = machine()
	candidate.Quiet()
	// The overload scenario starts a control plane of its own and builds
	// nothing: run alone, it needs neither the sidecars nor the shared
	// control plane.
	if len(opts.Only) > 0 && !slices.ContainsFunc(opts.Only, func(s string) bool { return s != ScenarioOverload }) {
		return e.runSteps(ctx, res, []step{{ScenarioOverload, runOverload}})
	}
	e.logf("building the sidecars")
	began := time.Now()
	if e.bins, err = build(ctx, dir); err != nil {
		return "", false, err
	}
	res.durations = append(res.durations, scenarioDuration{"build", time.Since(began)})
	e.logf("starting the control plane (kube-apiserver and etcd)")
	// The gate serves sharded LIST and WATCH (KEP-5866) to the
	// sharded-controllers scenario; nothing else asks for them.
	e.cp, err = controlplane.Start(ctx, controlplane.Options{Out: log, APIServerArgs: []string{"--feature-gates=ShardedListAndWatch=true"}})
	if err != nil {
		return "", false, err
	}
	defer func() {
		if err := e.cp.Stop(); err != nil {
			e.logf("stopping the control plane: %v", err)
		}
	}()
	e.admin = e.cp.AdminConfig()
	e.direct = e.cp.Kubeconfig()
	if e.kube, err = kubernetes.NewForConfig(e.admin); err != nil {
		return "", false, fmt.Errorf("unable to create an admin client: %w", err)
	}
	e.proxy, err = countproxy.Start(e.cp.URL(), e.admin.TLSClientConfig.CAData)
	if err != nil {
		return "", false, err
	}
	defer e.proxy.Close()
	res.bins = e.bins
	return e.runSteps(ctx, res, []step{
		{ScenarioHandoff, runHandoff},
		{ScenarioPlanned, runPlanned},
		{ScenarioCrash, runCrash},
		{ScenarioLoad, runLoad},
		{ScenarioFootprint, runFootprint},
		{ScenarioScale, runScale},
		{ScenarioCtrl, runCtrl},
		{ScenarioSharding, runSharding},
		{ScenarioOverload, runOverload},
		{ScenarioShardedCtrl, runShardedCtrl},
	})
}

// step is one scenario of a run.
type step struct {
	name string
	run  func(context.Context, *env, *results) error
}

// runSteps runs the steps that Options.Only selects and renders the
// report.
func (e *env) runSteps(ctx context.Context, res *results, steps []step) (report string, failed bool, err error) {
	opts := e.opts
	for _, s := range steps {
		if !opts.runs(s.name) {
			continue
		}
		if ctx.Err() != nil {
			return "", false, ctx.Err()
		}
		began := time.Now()
		e.logf("scenario %s", s.name)
		if err := s.run(ctx, e, res); err != nil {
			if ctx.Err() != nil {
				return "", false, ctx.Err()
			}
			e.logf("scenario %s failed: %v", s.name, err)
			res.failures = append(res.failures, fmt.Sprintf("%s: %v", s.name, err))
		}
		// Stragglers of a failed scenario must not disturb the next one.
		e.procs.killAll()
		res.durations = append(res.durations, scenarioDuration{s.name, time.Since(began)})
		e.logf("scenario %s done in %v", s.name, time.Since(began).Round(time.Second))
	}
	res.finished = time.Now()
	res.machine.loadEnd = loadAvg()
	return render(res), res.anyFailed(), nil
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.log, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// namespace creates a fresh namespace for one scenario variant.
func (e *env) namespace(ctx context.Context, prefix string) (string, error) {
	e.mu.Lock()
	e.nsSeq++
	ns := fmt.Sprintf("%s-%d", prefix, e.nsSeq)
	e.mu.Unlock()
	_, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("unable to create namespace %s: %w", ns, err)
	}
	return ns, nil
}

// proxyKubeconfig writes an admin kubeconfig that goes through the
// counting proxy and is counted under tag.
func (e *env) proxyKubeconfig(tag string) (string, error) {
	path := filepath.Join(e.dir, "kubeconfig-"+tag)
	if err := controlplane.WriteKubeconfig(e.proxy.Config(e.admin, tag), path); err != nil {
		return "", err
	}
	return path, nil
}

// uniform returns a random duration in [lo, hi).
func (e *env) uniform(lo, hi time.Duration) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return lo + time.Duration(e.rng.Int64N(int64(hi-lo)+1))
}

// binaries are the programs the benchmark runs, built like the release
// image (CGO_ENABLED=0, -trimpath, -tags=nethttpomithttp2, -ldflags="-s -w":
// see the Makefile).
type binaries struct {
	Elector  string // ../cmd/elector
	ClientGo string // cmd/clientgo-sidecar
	Many     string // cmd/many
}

var buildFlags = []string{"build", "-trimpath", "-tags=nethttpomithttp2", "-ldflags=-s -w"}

func build(ctx context.Context, dir string) (binaries, error) {
	root, err := moduleDir(ctx, "github.com/elector-dev/elector")
	if err != nil {
		return binaries{}, err
	}
	benchRoot, err := moduleDir(ctx, "")
	if err != nil {
		return binaries{}, err
	}
	b := binaries{
		Elector:  filepath.Join(dir, "elector"),
		ClientGo: filepath.Join(dir, "clientgo-sidecar"),
		Many:     filepath.Join(dir, "many"),
	}
	for _, s := range []struct{ dir, out, pkg string }{
		{root, b.Elector, "./cmd/elector"},
		{benchRoot, b.ClientGo, "./cmd/clientgo-sidecar"},
		{benchRoot, b.Many, "./cmd/many"},
	} {
		if err := goCmd(ctx, s.dir, append(slices.Clone(buildFlags), "-o", s.out, s.pkg)...); err != nil {
			return binaries{}, err
		}
	}
	return b, nil
}

// moduleDir is the directory of a module of the build ("" = the bench
// module itself; elector is its replacement, ../).
func moduleDir(ctx context.Context, module string) (string, error) {
	args := []string{"list", "-m", "-f", "{{.Dir}}"}
	if module != "" {
		args = append(args, module)
	}
	out, err := exec.CommandContext(ctx, "go", args...).Output()
	if err != nil {
		return "", fmt.Errorf("unable to find module %q (run the benchmark from the bench directory): %w", module, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func goCmd(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s in %s: %w\n%s", strings.Join(args, " "), dir, err, out.String())
	}
	return nil
}
