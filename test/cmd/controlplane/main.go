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

// Command controlplane builds and runs the Kubernetes control plane
// (kube-apiserver and etcd) that elector's integration tests use.
//
// Usage:
//
//	controlplane build      build the binaries if needed and print their paths
//	controlplane run [-v] [-ha]   run a control plane until Ctrl-C or SIGTERM
//
// With -ha, run starts three kube-apiservers behind a load balancer, on a
// three-member etcd cluster.
//
// The first build compiles kube-apiserver and etcd from source, which takes
// about ten minutes on two cores; later runs reuse the cached binaries. See
// package github.com/elector-dev/elector/test/controlplane for the
// environment variables that locate them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/elector-dev/elector/test/controlplane"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

const usage = `usage:
  controlplane build      build kube-apiserver and etcd if needed, print their paths
  controlplane run [-v] [-ha]   run a control plane until Ctrl-C or SIGTERM
                               (-ha: 3 kube-apiservers behind a load balancer, 3 etcd members)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit code. Cancelling
// ctx interrupts a build or a start, and stops a running control plane.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "build":
		err = build(ctx, rest, stdout, stderr)
	case "run":
		err = runControlPlane(ctx, rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "controlplane: unknown command %q\n%s", cmd, usage)
		return exitUsage
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "controlplane: interrupted")
		return exitInterrupted
	default:
		fmt.Fprintf(stderr, "controlplane: %v\n", err)
		return exitFailure
	}
}

// errUsage reports a command line error that has already been printed.
var errUsage = errors.New("usage error")

func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "controlplane %s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return errUsage
	}
	return nil
}

func build(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parseFlags(flag.NewFlagSet("build", flag.ContinueOnError), args, stderr); err != nil {
		return err
	}
	apiserver, etcd, err := controlplane.Binaries(ctx, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "kube-apiserver: %s\netcd: %s\n", apiserver, etcd)
	return nil
}

func runControlPlane(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	verbose := fs.Bool("v", false, "copy the output of etcd and kube-apiserver to stderr")
	ha := fs.Bool("ha", false, "run 3 kube-apiservers behind a load balancer, on a 3-member etcd cluster")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	cp, err := controlplane.Start(ctx, controlplane.Options{Out: stderr, Verbose: *verbose, HA: *ha})
	if err != nil {
		return err
	}
	if *ha {
		apiserverPIDs, etcdPIDs := cp.MemberPIDs()
		fmt.Fprintf(stdout, "HA control plane ready at %s, a load balancer (kube-apiserver pids %v, etcd pids %v)\n", cp.URL(), apiserverPIDs, etcdPIDs)
		for i := range cp.Members() {
			fmt.Fprintf(stdout, "kube-apiserver member %d at %s\n", i, cp.MemberURL(i))
		}
	} else {
		apiserverPID, etcdPID := cp.PIDs()
		fmt.Fprintf(stdout, "control plane ready at %s (kube-apiserver pid %d, etcd pid %d)\n", cp.URL(), apiserverPID, etcdPID)
	}
	fmt.Fprintf(stdout, "export KUBECONFIG=%s\n", cp.Kubeconfig())
	fmt.Fprintln(stdout, "press Ctrl-C to stop")
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping the control plane")
	if err := cp.Stop(); err != nil {
		return fmt.Errorf("unable to stop cleanly: %w", err)
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}
