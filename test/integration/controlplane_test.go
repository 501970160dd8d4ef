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

package integration

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/elector-dev/elector/test/controlplane"
)

// TestStopLeavesNothing checks that Stop ends kube-apiserver and etcd, with
// their process groups, and removes the temporary directory.
func TestStopLeavesNothing(t *testing.T) {
	c, err := controlplane.Start(t.Context(), controlplane.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })

	apiserver, etcd := c.PIDs()
	if apiserver == 0 || etcd == 0 {
		t.Fatalf("PIDs() = %d, %d; want two running processes", apiserver, etcd)
	}
	dir := filepath.Dir(c.Kubeconfig())
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for _, pid := range []int{apiserver, etcd} {
		// Each child leads its own process group.
		for _, target := range []int{pid, -pid} {
			if err := syscall.Kill(target, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("kill(%d, 0) after Stop = %v, want ESRCH", target, err)
			}
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat %s after Stop: %v, want not exist", dir, err)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if a, e := c.PIDs(); a != 0 || e != 0 {
		t.Errorf("PIDs() after Stop = %d, %d; want 0, 0", a, e)
	}
}

func newClient(t *testing.T, cfg *rest.Config) *kubernetes.Clientset {
	t.Helper()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("unable to create a client: %v", err)
	}
	return client
}
