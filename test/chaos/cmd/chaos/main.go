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

// Command chaos is the long chaos run: N seeded fault schedules against a
// real kube-apiserver and etcd, alternating library candidates and sidecar
// replicas, then a table of what was injected and found. Run it from the
// test module (make chaos N=200 does):
//
//	go run ./chaos/cmd/chaos -n 200
//
// Every schedule is reproducible from its seed (-seed is the first; the
// others follow). The exit code is 1 if any schedule found a problem (an
// overlap, a detector violation, a heal without a leader, an unexpected
// error or exit code); the logs of such schedules are kept and named.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/elector-dev/elector/test/chaos/harness"
	"github.com/elector-dev/elector/test/chaos/skewclock"
	"github.com/elector-dev/elector/test/controlplane"
)

func main() { os.Exit(run()) }

func run() int {
	n := flag.Int("n", 200, "number of schedules")
	seed := flag.Uint64("seed", 1, "seed of the first schedule; schedule i uses seed+i")
	episodes := flag.Int("episodes", 4, "fault episodes per schedule")
	candidates := flag.Int("candidates", 3, "candidates per schedule")
	only := flag.String("only", "", "run only library or only sidecar schedules")
	out := flag.String("o", "", "also write the table to this file")
	keep := flag.Bool("keep", false, "keep the logs of every schedule, not only of failed ones")
	shardRuns := flag.Int("shard-schedules", 10, "sharded-mode schedules (package shard, K=8, 60s of faults each) run after the others")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := os.MkdirTemp("", "elector-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "chaos: building the sidecar and the actor into %s\n", dir)
	bins, err := harness.Build(ctx, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "chaos: starting kube-apiserver and etcd")
	cp, err := controlplane.Start(ctx, controlplane.Options{Out: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: unable to stop the control plane:", err)
		}
	}()

	var sum harness.Summary
	start := time.Now()
	for i := range *n {
		if ctx.Err() != nil {
			break
		}
		kind := "library"
		if i%2 == 1 {
			kind = "sidecar"
		}
		if *only != "" {
			kind = *only
		}
		s := *seed + uint64(i)
		sdir := filepath.Join(dir, fmt.Sprintf("%03d-%s-seed-%d", i, kind, s))
		res, err := runOne(ctx, cp, bins, kind, s, *episodes, *candidates, sdir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "chaos: schedule %d (%s, seed %d): %v\n", i, kind, s, err)
			if ctx.Err() != nil {
				break
			}
			return 1
		}
		sum.Add(res)
		status := "ok"
		if !res.OK() {
			status = "PROBLEMS (logs in " + sdir + ")\n  " + strings.Join(res.Problems, "\n  ")
		} else if !*keep {
			os.RemoveAll(sdir)
		}
		var rec []string
		for _, r := range res.Report.Recoveries {
			rec = append(rec, r.After.Round(time.Millisecond).String())
		}
		fmt.Fprintf(os.Stderr, "chaos: %3d/%d %-7s seed %-4d %5.1fs %2d faults %2d tenures, leader after heal [%s] %s\n",
			i+1, *n, kind, s, res.Took.Seconds(), res.Report.Faults, len(res.Report.Intervals), strings.Join(rec, " "), status)
	}

	shardFailed := 0
	for i := range *shardRuns {
		if ctx.Err() != nil {
			break
		}
		s := *seed + uint64(i)
		sdir := filepath.Join(dir, fmt.Sprintf("shard-%03d-seed-%d", i, s))
		res, err := runShard(ctx, cp, s, sdir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "chaos: sharded schedule %d (seed %d): %v\n", i, s, err)
			return 1
		}
		status := "ok"
		if !res.OK() {
			shardFailed++
			status = "PROBLEMS (logs in " + sdir + ")\n  " + strings.Join(res.Problems, "\n  ")
		} else if !*keep {
			os.RemoveAll(sdir)
		}
		fmt.Fprintf(os.Stderr, "chaos: %3d/%d sharded seed %-4d %5.1fs %2d faults %3d tenures, balanced %v after the heal %s\n",
			i+1, *shardRuns, s, res.Took.Seconds(), len(res.Faults), res.Tenures, res.Balanced.Round(time.Millisecond), status)
	}

	var w io.Writer = os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			return 1
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	fmt.Fprintf(w, "Command: `make chaos N=%d` (go run ./chaos/cmd/chaos -n %d -seed %d -episodes %d -candidates %d), %s, %d CPUs, %v.\n\n",
		*n, *n, *seed, *episodes, *candidates, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), time.Since(start).Round(time.Minute))
	sum.WriteTable(w)
	if *shardRuns > 0 {
		fmt.Fprintf(w, "\nSharded mode (package shard, K = 8): %d schedules, %d with problems (double ownership, tokens, balance after the heal).\n", *shardRuns, shardFailed)
	}
	if sum.Failed() > 0 || shardFailed > 0 {
		return 1
	}
	if !*keep {
		os.RemoveAll(dir)
	}
	return 0
}

// runOne runs one schedule in a fresh namespace.
func runOne(ctx context.Context, cp *controlplane.ControlPlane, bins harness.Binaries, kind string, seed uint64, episodes, candidates int, dir string) (harness.Result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return harness.Result{}, err
	}
	log, err := os.Create(filepath.Join(dir, "harness.log"))
	if err != nil {
		return harness.Result{}, err
	}
	defer log.Close()
	e, err := harness.NewEnv(ctx, cp, dir, "chaos", log)
	if err != nil {
		return harness.Result{}, err
	}
	defer e.Close()
	var (
		c *harness.Cluster
		s harness.Schedule
	)
	switch kind {
	case "library":
		tm := harness.DefaultTiming
		s = harness.Generate(seed, harness.LibraryKinds, episodes, candidates, tm.Lease, tm.Lease-tm.Renew, skewclock.Bound(tm.Lease, tm.Renew))
		c, err = harness.NewLibraryCluster(e, candidates, tm, s)
	case "sidecar":
		s = harness.Generate(seed, harness.SidecarKinds, episodes, candidates, harness.SidecarTTL, harness.SidecarMargin, 0)
		c, err = harness.NewSidecarCluster(e, bins, candidates, harness.ReplicaOptions{})
	default:
		return harness.Result{}, fmt.Errorf("unknown kind %q (library or sidecar)", kind)
	}
	if err != nil {
		return harness.Result{}, err
	}
	return c.Run(ctx, s), nil
}

// runShard runs one sharded-mode schedule in a fresh namespace.
func runShard(ctx context.Context, cp *controlplane.ControlPlane, seed uint64, dir string) (harness.ShardResult, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return harness.ShardResult{}, err
	}
	log, err := os.Create(filepath.Join(dir, "harness.log"))
	if err != nil {
		return harness.ShardResult{}, err
	}
	defer log.Close()
	e, err := harness.NewEnv(ctx, cp, dir, "chaos-shard", log)
	if err != nil {
		return harness.ShardResult{}, err
	}
	defer e.Close()
	return harness.RunShardSchedule(ctx, e, harness.ShardOptions{
		Seed: seed, K: 8, Replicas: 3, Faults: time.Minute, Timing: harness.DefaultTiming,
	}), nil
}
