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

// Command clientgo-sidecar is the benchmark's baseline: a minimal
// leader-election sidecar on client-go's tools/leaderelection with a
// LeaseLock and ReleaseOnCancel, as most client-go users configure it. It
// campaigns for a Lease until SIGTERM or SIGINT, then releases the Lease
// and exits 0.
//
// It prints to stdout, for the benchmark:
//
//	observed leader <identity>   once, when it first knows the holder
//	started leading <identity>   when OnStartedLeading is called
//
// It has no HTTP server, metrics, labels or Events: it is the smallest
// program that does what the elector sidecar's election does, so its
// footprint is a lower bound for a client-go sidecar.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// observePoll is how often the leader is checked until it is first known.
const observePoll = 20 * time.Millisecond

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("clientgo-sidecar", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		election   = fs.String("election", "", "name of the Lease (required)")
		namespace  = fs.String("election-namespace", "default", "namespace of the Lease")
		id         = fs.String("id", "", "identity of this candidate (required)")
		kubeconfig = fs.String("kubeconfig", "", "kubeconfig file (required)")
		lease      = fs.Duration("lease-duration", 15*time.Second, "LeaseDuration")
		renew      = fs.Duration("renew-deadline", 10*time.Second, "RenewDeadline")
		retry      = fs.Duration("retry-period", 2*time.Second, "RetryPeriod")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *election == "" || *id == "" || *kubeconfig == "" {
		fmt.Fprintln(stderr, "clientgo-sidecar: --election, --id and --kubeconfig are required")
		return 2
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintf(stderr, "clientgo-sidecar: %v\n", err)
		return 3
	}
	// As leaderelection.NewFromKubeconfig does.
	cfg.Timeout = max(*renew/2, time.Second)
	cfg.UserAgent = "clientgo-sidecar"
	client, err := coordinationv1client.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "clientgo-sidecar: %v\n", err)
		return 3
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: *namespace, Name: *election},
			Client:     client,
			LockConfig: resourcelock.ResourceLockConfig{Identity: *id},
		},
		LeaseDuration:   *lease,
		RenewDeadline:   *renew,
		RetryPeriod:     *retry,
		ReleaseOnCancel: true,
		Name:            *election,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { fmt.Fprintln(stdout, "started leading", *id) },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "clientgo-sidecar: %v\n", err)
		return 3
	}
	go func() {
		t := time.NewTicker(observePoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if l := le.GetLeader(); l != "" {
					fmt.Fprintln(stdout, "observed leader", l)
					return
				}
			}
		}
	}()
	// Like the elector sidecar, campaign again after a lost tenure.
	for ctx.Err() == nil {
		le.Run(ctx)
	}
	return 0
}
