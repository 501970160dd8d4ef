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

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// --version prints version, commit and Go version from the ldflags, the
// one source a release stamps; a binary built with them says so exactly.
func TestVersionFromLdflags(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "elector")
	build := exec.Command("go", "build", "-ldflags", "-X main.buildVersion=v9.8.7 -X main.buildCommit=0123abc", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), "elector v9.8.7 (commit 0123abc, "+runtime.Version()+")\n"; got != want {
		t.Fatalf("--version = %q, want %q", got, want)
	}
}
