package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain doubles as the watchdog: the supervisor tests re-execute the
// test binary as `__watchdog -- COMMAND`, like elector re-executes itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == watchdogCommand {
		os.Exit(watchdogMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m,
		// klog starts its flush daemon at init.
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
	)
}
