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

// Command many runs one candidate in each of N elections in one process,
// with elector (one shared watch for all, elector.NewSharedWatch) or with
// client-go's tools/leaderelection (N LeaderElectors on one client), for
// the benchmark's scale scenario.
//
// Every second it prints one JSON line of Status to stdout. It stops on
// SIGTERM or SIGINT; the Leases it holds are released.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/bench/internal/candidate"
)

// Status is one report line.
type Status struct {
	Leading    int    `json:"leading"`    // elections this process leads
	Known      int    `json:"known"`      // elections whose holder it knows
	HeapInuse  uint64 `json:"heapInuse"`  // runtime.MemStats.HeapInuse
	Sys        uint64 `json:"sys"`        // runtime.MemStats.Sys
	Goroutines int    `json:"goroutines"` // runtime.NumGoroutine
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("many", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		impl       = fs.String("impl", "elector", "elector or client-go")
		n          = fs.Int("n", 1000, "number of elections")
		namespace  = fs.String("namespace", "default", "namespace of the Leases")
		prefix     = fs.String("prefix", "e-", "Lease names are <prefix><index>")
		id         = fs.String("id", "", "identity of this process in every election (required)")
		kubeconfig = fs.String("kubeconfig", "", "kubeconfig file (required)")
		interval   = fs.Duration("interval", time.Second, "status interval")
		logLevel   = fs.String("log-level", "", "elector's log level on stderr (debug, info, ...); default: no logs")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *id == "" || *kubeconfig == "" {
		fmt.Fprintln(stderr, "many: --id and --kubeconfig are required")
		return 2
	}
	candidate.Quiet()
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintf(stderr, "many: %v\n", err)
		return 3
	}
	im := candidate.Impl(*impl)
	// One client for all elections; its rate limiter would otherwise cap
	// the whole process at 5 requests/s.
	client, err := coordinationv1client.NewForConfig(candidate.RESTConfig(cfg, im, candidate.Common, -1))
	if err != nil {
		fmt.Fprintf(stderr, "many: %v\n", err)
		return 3
	}
	logger := slog.New(slog.DiscardHandler)
	if *logLevel != "" {
		var level slog.Level
		if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
			fmt.Fprintf(stderr, "many: --log-level=%s: %v\n", *logLevel, err)
			return 2
		}
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	}
	var watch *elector.SharedWatch
	if im == candidate.Elector {
		watch = elector.NewSharedWatch(client.Leases(*namespace), *namespace, elector.SharedWatchOptions{Logger: logger})
	}
	cands := make([]*candidate.Candidate, 0, *n)
	defer func() {
		var wg sync.WaitGroup
		for _, c := range cands {
			wg.Go(func() { _ = c.StopWait(30 * time.Second) })
		}
		wg.Wait()
	}()
	for i := range *n {
		c, err := candidate.Start(candidate.Options{
			Impl:      im,
			Namespace: *namespace,
			Name:      fmt.Sprintf("%s%04d", *prefix, i),
			Identity:  *id,
			Timing:    candidate.Common,
			Client:    client,
			Watch:     watch,
			Logger:    logger,
		})
		if err != nil {
			fmt.Fprintf(stderr, "many: %v\n", err)
			return 3
		}
		cands = append(cands, c)
	}

	enc := json.NewEncoder(stdout)
	t := time.NewTicker(*interval)
	defer t.Stop()
	for {
		var s Status
		for _, c := range cands {
			if c.Leading() {
				s.Leading++
			}
			if c.KnownLeader() != "" {
				s.Known++
			}
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s.HeapInuse, s.Sys, s.Goroutines = ms.HeapInuse, ms.Sys, runtime.NumGoroutine()
		if err := enc.Encode(s); err != nil {
			return 1
		}
		select {
		case <-ctx.Done():
			return 0
		case <-t.C:
		}
	}
}
