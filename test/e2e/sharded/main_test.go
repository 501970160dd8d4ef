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

// Package sharded runs the sharded example operator of package
// github.com/elector-dev/elector/ctrl (ctrl/example/sharded) as real
// processes against a real kube-apiserver with the ShardedListAndWatch
// feature gate on (KEP-5866: the API server filters LIST and WATCH by a
// shardSelector), and against a second one with it off (the operator
// filters on the client). Each replica reaches the API server through a
// counting proxy (test/watchcount), so the watch events it receives are
// counted per replica; an outside checker reads every replica's record of
// reconciles and proves that no object had two owners at one instant.
package sharded

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/elector-dev/elector/test/controlplane"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// gateOn is the kube-apiserver flag that serves sharded LIST and WATCH.
const gateOn = "--feature-gates=ShardedListAndWatch=true"

var (
	// cp has the gate on; the package's control plane.
	cp *controlplane.ControlPlane
	// exampleBin is ctrl/example/sharded, built by the first test that runs it.
	exampleBin  string
	exampleErr  error
	exampleOnce sync.Once
	tmpDir      string

	// gateOff is a second control plane with the gate off, started by
	// the first test that needs it and stopped by TestMain.
	gateOff     *controlplane.ControlPlane
	gateOffErr  error
	gateOffOnce sync.Once
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	tmpDir, err = os.MkdirTemp("", "elector-sharded-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmpDir)
	code := controlplane.RunMainWithOptions(m, &cp, controlplane.Options{APIServerArgs: []string{gateOn}})
	if gateOff != nil {
		if err := gateOff.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "controlplane (gate off): %v\n", err)
			code = 1
		}
	}
	// After both control planes have stopped: only then do the clients'
	// connections to them close and their goroutines end.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	return code
}

// example returns the example operator, built on first use (with -race
// when the tests have it), as a user of the ctrl module would build it.
func example(t *testing.T) string {
	t.Helper()
	exampleOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		exampleBin, exampleErr = sidecar.BuildMain(ctx, "the sharded example operator", "ctrl", "./example/sharded", filepath.Join(tmpDir, "sharded"))
	})
	if exampleErr != nil {
		t.Fatal(exampleErr)
	}
	return exampleBin
}

// gateOffPlane returns the control plane with the gate off, starting it
// on first use: a second kube-apiserver and etcd only while the package's
// tests run.
func gateOffPlane(t *testing.T) *controlplane.ControlPlane {
	t.Helper()
	gateOffOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		gateOff, gateOffErr = controlplane.Start(ctx, controlplane.Options{Out: os.Stderr})
	})
	if gateOffErr != nil {
		t.Fatalf("unable to start the control plane with the gate off: %v", gateOffErr)
	}
	return gateOff
}
