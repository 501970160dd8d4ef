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

// Package ctrl runs the example operator of package
// github.com/elector-dev/elector/ctrl (ctrl/example) as real processes
// against a real kube-apiserver: two replicas of a controller-runtime
// manager, each authenticated as a ServiceAccount bound to a
// least-privilege Role, whose reconciler holds an exclusive flock while it
// works and records (token, time), and whose webhook server and probes
// are called directly. It checks what the ctrl package promises: one
// reconciling replica at a time, growing tokens, a SIGTERM handoff in
// milliseconds, webhooks and probes on every replica all the time, a
// partitioned leader that stops before the next one starts, and a Lease
// shared with plain controller-runtime.
package ctrl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/elector-dev/elector/test/controlplane"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

var (
	cp *controlplane.ControlPlane
	// exampleBin is ctrl/example, built once by TestMain (with -race when
	// the tests have it).
	exampleBin string
	tmpDir     string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	tmpDir, err = os.MkdirTemp("", "elector-ctrl-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmpDir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	exampleBin, err = build(ctx, tmpDir)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	return controlplane.RunMainNoLeaks(m, &cp)
}

// build compiles ctrl/example into dir/example, in the ctrl module, as a
// user of that module would.
func build(ctx context.Context, dir string) (string, error) {
	return sidecar.BuildMain(ctx, "the example operator", "ctrl", "./example", filepath.Join(dir, "example"))
}
