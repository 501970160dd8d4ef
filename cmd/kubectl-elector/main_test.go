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
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
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

func TestVersionVerb(t *testing.T) {
	buildVersion, buildCommit = "v9.8.7", "0123abc"
	t.Cleanup(func() { buildVersion, buildCommit = "", "" })
	// No kubeconfig anywhere: version needs none.
	noKubeconfig(t)
	code, out, errOut := runCmd(t, "version")
	if want := "kubectl-elector v9.8.7 (commit 0123abc, " + runtime.Version() + ")\n"; code != ExitOK || out != want || errOut != "" {
		t.Errorf("version: code %d, out %q, err %q; want 0, %q", code, out, errOut, want)
	}
	code, out, _ = runCmd(t, "version", "-o", "json")
	var doc versionOutput
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != ExitOK || doc.ClientVersion.GitVersion != "v9.8.7" || doc.ClientVersion.GitCommit != "0123abc" {
		t.Errorf("version -o json: code %d, %v, %q", code, err, out)
	}
	code, out, _ = runCmd(t, "version", "-o", "yaml")
	if code != ExitOK || !strings.HasPrefix(out, "clientVersion:\n  gitCommit: 0123abc\n") {
		t.Errorf("version -o yaml: code %d, %q", code, out)
	}
}

// noKubeconfig makes sure no kubeconfig can be found: no $KUBECONFIG
// file, no ~/.kube/config, not in a Pod.
func noKubeconfig(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	home := clientcmd.RecommendedHomeFile
	clientcmd.RecommendedHomeFile = filepath.Join(dir, "home", ".kube", "config")
	t.Cleanup(func() { clientcmd.RecommendedHomeFile = home })
}

// TestNoKubeconfig: with nothing to connect with, every command that
// needs the API server says so with exit 3, not "unable to reach
// http://localhost:8080".
func TestNoKubeconfig(t *testing.T) {
	noKubeconfig(t)
	for _, args := range [][]string{{"list"}, {"status", "x"}, {"watch"}, {"handoff", "x"}, {"shards"}, {"why", "x", "--for", "alice"}} {
		code, out, errOut := runCmd(t, args...)
		want := "kubectl elector: no kubeconfig found: --kubeconfig is not given, $KUBECONFIG is unset, " + clientcmd.RecommendedHomeFile +
			" does not exist, and this is not a Pod with a ServiceAccount token; pass --kubeconfig=PATH or set $KUBECONFIG\n"
		if code != ExitConfig || out != "" || errOut != want {
			t.Errorf("%v: code %d, stdout %q, stderr %q; want %d and %q", args, code, out, errOut, ExitConfig, want)
		}
	}
	missing := filepath.Join(t.TempDir(), "missing")
	t.Setenv("KUBECONFIG", missing)
	if code, _, errOut := runCmd(t, "list"); code != ExitConfig || !strings.Contains(errOut, "$KUBECONFIG="+missing+" names no kubeconfig file") {
		t.Errorf("$KUBECONFIG naming no file: code %d, %q", code, errOut)
	}
	// --server alone is enough, as for kubectl: the API server is tried.
	if code, _, errOut := runCmd(t, "--server", "https://127.0.0.1:1", "--request-timeout", "5s", "list"); code != ExitUnreachable ||
		!strings.Contains(errOut, "unable to reach the API server at https://127.0.0.1:1") {
		t.Errorf("--server: code %d, %q", code, errOut)
	}
}

// TestCredentialsOrder: --kubeconfig, then $KUBECONFIG, then
// ~/.kube/config, as kubectl; in-cluster only when none has a
// configuration (the Pod's environment does not win over $KUBECONFIG).
func TestCredentialsOrder(t *testing.T) {
	noKubeconfig(t)
	dir := t.TempDir()
	write := func(name, port string) string {
		p := filepath.Join(dir, name)
		cfg := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:" + port + "\"}}]\n" +
			"users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flag, env := write("flag", "1"), write("env", "2")
	clientcmd.RecommendedHomeFile = write(filepath.Join("home", ".kube", "config"), "3")
	// As if in a Pod, which must not win over any kubeconfig.
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	saved := serviceAccountTokenFile
	serviceAccountTokenFile = token
	t.Cleanup(func() { serviceAccountTokenFile = saved })
	t.Setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "4")

	host := func(args ...string) string {
		t.Helper()
		code, _, errOut := runCmd(t, append(args, "--request-timeout", "5s", "list", "-n", "x")...)
		i := strings.Index(errOut, "https://127.0.0.1:")
		if code != ExitUnreachable || i < 0 {
			t.Fatalf("%v: code %d, %q", args, code, errOut)
		}
		return errOut[i : i+len("https://127.0.0.1:1")]
	}
	t.Setenv("KUBECONFIG", env)
	if got := host("--kubeconfig", flag); got != "https://127.0.0.1:1" {
		t.Errorf("--kubeconfig and $KUBECONFIG: used %s, want --kubeconfig's", got)
	}
	if got := host(); got != "https://127.0.0.1:2" {
		t.Errorf("$KUBECONFIG and ~/.kube/config: used %s, want $KUBECONFIG's", got)
	}
	t.Setenv("KUBECONFIG", "")
	if got := host(); got != "https://127.0.0.1:3" {
		t.Errorf("~/.kube/config in a Pod: used %s, want ~/.kube/config's", got)
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
	for _, cmd := range []string{"list", "status", "watch", "handoff", "why", "shards", "version"} {
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
