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

// Package kubectlelector runs the kubectl-elector plugin binary against a
// real kube-apiserver and etcd, as real ServiceAccounts: an operator with
// exactly the Role the plugin documents (and one without it), elector
// sidecars with the ServiceAccount, Role and RoleBinding of deploy/base,
// client-go's tools/leaderelection in this process, and a Lease whose
// holder has stopped.
package kubectlelector

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
	// electorBin is cmd/elector; pluginBin is cmd/kubectl-elector, built
	// with `go build` in its own module, as a user would.
	electorBin, pluginBin string
	tmpDir                string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	tmpDir, err = os.MkdirTemp("", "kubectl-elector-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmpDir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if electorBin, err = sidecar.Build(ctx, tmpDir); err == nil {
		pluginBin, err = buildPlugin(ctx, tmpDir)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	return controlplane.RunMainNoLeaks(m, &cp)
}

// buildPlugin compiles cmd/kubectl-elector into dir, with -race when
// this program has it, in its own module, as a user would.
func buildPlugin(ctx context.Context, dir string) (string, error) {
	return sidecar.BuildMain(ctx, "kubectl-elector", "cmd/kubectl-elector", ".", filepath.Join(dir, "kubectl-elector"))
}
