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
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	buildVersion, buildCommit = "v9.8.7", "0123abc"
	t.Cleanup(func() { buildVersion, buildCommit = "", "" })
	code, out, _ := runCmd(t, "--version")
	if want := "kubectl-elector v9.8.7 (commit 0123abc, " + runtime.Version() + ")\n"; code != ExitOK || out != want {
		t.Errorf("--version: code %d, out %q; want 0, %q", code, out, want)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"lsit"}, `kubectl elector: unknown command "lsit" for "kubectl elector"; see kubectl elector -h`},
		{[]string{"list", "--bogus"}, "kubectl elector: unknown flag: --bogus; see kubectl elector list -h"},
		{[]string{"list", "-o", "table"}, `kubectl elector: -o "table": want wide, json, yaml or name; see kubectl elector list -h`},
		{[]string{"status"}, "kubectl elector: missing the Lease NAME; see kubectl elector status -h"},
		{[]string{"status", "a", "b"}, `kubectl elector: unexpected argument "b"; see kubectl elector status -h`},
		{[]string{"handoff", "l", "--timeout", "0s"}, "kubectl elector: --timeout=0s: want a positive duration such as 30s; see kubectl elector handoff -h"},
		{[]string{"handoff", "l", "--to", ""}, "kubectl elector: --to is empty: name the target's identity, or leave --to out to hand off to anyone else; see kubectl elector handoff -h"},
		{[]string{"why", "l"}, "kubectl elector: missing --for: name the subject, such as --for=system:serviceaccount:NAMESPACE:NAME; see kubectl elector why -h"},
		{[]string{"why", "l", "--for", "system:serviceaccount:x"}, "kubectl elector: --for=system:serviceaccount:x: want system:serviceaccount:NAMESPACE:NAME; see kubectl elector why -h"},
		{[]string{"watch", "l", "-A"}, "kubectl elector: NAME and -A exclude each other: a Lease name is per namespace; see kubectl elector watch -h"},
		{[]string{"-v"}, "kubectl elector: unknown shorthand flag: 'v' in -v; see kubectl elector -h"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			// A kubeconfig that does not exist: nothing may reach for it
			// before the command line is checked.
			args := append([]string{"--kubeconfig", filepath.Join(t.TempDir(), "none")}, tt.args...)
			code, out, errOut := runCmd(t, args...)
			if code != ExitUsage || out != "" || errOut != tt.want+"\n" {
				t.Errorf("code %d, stdout %q, stderr %q; want %d and %q", code, out, errOut, ExitUsage, tt.want)
			}
		})
	}
}

func TestBadKubeconfig(t *testing.T) {
	code, _, errOut := runCmd(t, "--kubeconfig", filepath.Join(t.TempDir(), "none"), "list")
	if code != ExitConfig || !strings.HasPrefix(errOut, "kubectl elector: unable to load the kubeconfig: ") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("code %d, stderr %q; want %d and one line", code, errOut, ExitConfig)
	}
}

func TestHelpNamesThePlugin(t *testing.T) {
	for _, cmd := range []string{"list", "status", "watch", "handoff", "why"} {
		code, out, _ := runCmd(t, cmd, "-h")
		if code != ExitOK || !strings.Contains(out, "Usage:\n  kubectl elector "+cmd) {
			t.Errorf("%s -h: code %d, usage does not start with kubectl elector %s:\n%s", cmd, code, cmd, out)
		}
	}
}

func TestAsFailure(t *testing.T) {
	if asFailure(nil) != nil {
		t.Error("asFailure(nil) != nil")
	}
	var ee *exitError
	if err := asFailure(errors.New("unable to encode the output: x")); !asExit(err, &ee) || ee.code != ExitFailure || ee.msg != "unable to encode the output: x" {
		t.Errorf("plain error: %v", err)
	}
	nf := fail(ExitNotFound, "gone")
	if err := asFailure(nf); err != nf { //nolint:errorlint // the very same error
		t.Errorf("exit error changed: %v", err)
	}
}
