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
