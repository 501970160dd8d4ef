package integration

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/elector-dev/elector/test/controlplane"
)

// cp is the control plane shared by the tests of this package.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	code := controlplane.RunMain(m, &cp)
	// Like goleak.VerifyTestMain, but after the control plane is stopped: the
	// connections of the clients to it only close, and their goroutines only
	// end, once kube-apiserver is gone.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
