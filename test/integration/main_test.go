package integration

import (
	"os"
	"testing"

	"github.com/elector-dev/elector/test/controlplane"
)

// cp is the control plane shared by the tests of this package.
var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunMainNoLeaks(m, &cp))
}
