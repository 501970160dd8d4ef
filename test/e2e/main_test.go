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

// Package e2e runs the elector sidecar binary as real processes, the way
// a Deployment runs it: with the ServiceAccount, Role and RoleBinding of
// deploy/ applied to a real kube-apiserver, each replica authenticated
// with a token of that ServiceAccount, $POD_NAME and $POD_NAMESPACE set as
// by the Downward API, and signals sent as by the kubelet.
//
// Parallel tests. Most tests spend their time waiting (a lease, the
// sidecar's 15s of permission re-checks, an alert's "for"), so those that
// are isolated call t.Parallel(): each has its own namespace (setup), so
// its own ServiceAccount, Role, Lease, Pods and kubeconfig; its own
// processes on ports the kernel picks (sidecar.LocalArgs); its own files
// under t.TempDir(); no t.Setenv and no package variable it writes (the
// builds are guarded by sync.Once). Tests that disturb the whole API
// server stay serial: TestAPIServerRestarts stops kube-apiserver, and go
// test runs parallel tests only once every serial test has returned, so no
// parallel test sees its outages. TestHTTPUnderAbuse stays serial too:
// it holds thousands of sockets in this process, and every probe of its
// sidecar must be answered under attack. So does TestMonitoringKit: run
// alongside the others (-parallel=8, make stress on the machine), the
// shipped ElectorMultipleLeaders fired once during its twenty quick
// handoffs (probably a short-lived replica that led in each of its few
// scrapes: min_over_time over 1m counts it), so its "no alert" check keeps
// the package to itself, as before.
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/elector-dev/elector/test/controlplane"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

var (
	cp *controlplane.ControlPlane
	// electorBin is cmd/elector, built once by TestMain (with -race when
	// the tests have it).
	electorBin string
	// tmpDir holds the binary and the kubeconfigs.
	tmpDir string
)

func TestMain(m *testing.M) {
	// The test binary doubles as the command run in exec mode.
	if os.Getenv(envHelper) == helperLockHolder {
		os.Exit(lockHolder())
	}
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	tmpDir, err = os.MkdirTemp("", "elector-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmpDir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	electorBin, err = sidecar.Build(ctx, tmpDir)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	code := controlplane.RunMain(m, &cp)
	// After the control plane has stopped: only then do the clients'
	// connections to it close and their goroutines end.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	return code
}
