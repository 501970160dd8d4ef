package chaos

import (
	"testing"

	"github.com/elector-dev/elector/test/chaos/harness"
	"github.com/elector-dev/elector/test/chaos/skewclock"
)

func TestLibrarySchedules(t *testing.T) {
	tm := harness.DefaultTiming
	for _, seed := range []uint64{1, 2} {
		s := harness.Generate(seed, harness.LibraryKinds, 4, 3, tm.Lease, tm.Lease-tm.Renew, skewclock.Bound(tm.Lease, tm.Renew))
		e := newEnv(t)
		c, err := harness.NewLibraryCluster(e, 3, tm, s)
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, c.Run(t.Context(), s))
	}
}

func TestSidecarSchedule(t *testing.T) {
	s := harness.Generate(3, harness.SidecarKinds, 4, 3, harness.SidecarTTL, harness.SidecarMargin, 0)
	e := newEnv(t)
	c, err := harness.NewSidecarCluster(e, bins, 3, harness.ReplicaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, c.Run(t.Context(), s))
}
