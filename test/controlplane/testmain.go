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

package controlplane

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// RunMain starts a control plane, stores it in *cp, runs the tests of the
// package and stops the control plane. It returns the exit code for os.Exit:
//
//	var cp *controlplane.ControlPlane
//
//	func TestMain(m *testing.M) {
//		os.Exit(controlplane.RunMain(m, &cp))
//	}
//
// The progress of a first-run build of the binaries goes to os.Stderr. If the
// control plane cannot be built or started, no test runs and the package
// fails: integration tests are never skipped silently. Build the binaries
// beforehand ("make controlplane"): "go test" buffers the output of packages
// run in parallel, and kills a test binary that runs longer than -timeout
// plus a minute, build included.
//
// The control plane is stopped when the tests return, when TestMain panics,
// and on SIGINT or SIGTERM, after which the process exits with 130 or 143. A
// panic in a test goroutine or a test timeout crashes the process without
// running deferred code; the kernel then kills etcd and kube-apiserver (see
// PR_SET_PDEATHSIG in the package documentation) and the next Start removes
// the temporary directory left behind.
//
// RunMain leaves no goroutine behind, so goleak.Find may follow it.
func RunMain(m *testing.M, cp **ControlPlane) (code int) {
	return RunMainWithOptions(m, cp, Options{})
}

// RunMainWithOptions is RunMain with Options for Start, such as extra
// kube-apiserver flags (feature gates). A nil Out means os.Stderr.
func RunMainWithOptions(m *testing.M, cp **ControlPlane, opts Options) (code int) {
	if opts.Out == nil {
		opts.Out = os.Stderr
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)

	// started receives the result of Start, so that a signal arriving while
	// the control plane starts can wait for it and stop it.
	started := make(chan *ControlPlane, 1)
	finished := make(chan struct{})
	handlerDone := make(chan struct{})
	go func() {
		defer close(handlerDone)
		select {
		case <-finished:
		case sig := <-signals:
			cancel()
			fmt.Fprintf(os.Stderr, "controlplane: %v received, stopping the control plane\n", sig)
			if c := <-started; c != nil {
				if err := c.Stop(); err != nil {
					fmt.Fprintf(os.Stderr, "controlplane: %v\n", err)
				}
			}
			code := 130
			if sig == syscall.SIGTERM {
				code = 143
			}
			os.Exit(code)
		}
	}()
	defer func() {
		close(finished)
		<-handlerDone
	}()

	c, err := Start(ctx, opts)
	started <- c
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: unable to start the test control plane: %v\n", err)
		return 1
	}
	defer func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "controlplane: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}()
	*cp = c
	return m.Run()
}

// RunMainNoLeaks is RunMain followed by a goroutine-leak check, which
// fails a passing package whose tests left goroutines behind. It checks
// after the control plane has stopped (unlike goleak.VerifyTestMain):
// the goroutines of clients' connections to kube-apiserver end only once
// it is gone.
func RunMainNoLeaks(m *testing.M, cp **ControlPlane) int {
	return RunMainNoLeaksWithOptions(m, cp, Options{})
}

// RunMainNoLeaksWithOptions is RunMainNoLeaks with Options for Start.
func RunMainNoLeaksWithOptions(m *testing.M, cp **ControlPlane, opts Options) int {
	code := RunMainWithOptions(m, cp, opts)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	return code
}
