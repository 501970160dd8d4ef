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
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeconfigFile writes a kubeconfig for server whose current context has
// namespace ns ("" for none).
func kubeconfigFile(t *testing.T, dir, server, ns string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: %q}
users:
- name: u
  user: {token: t}
contexts:
- name: c
  context: {cluster: c, user: u, namespace: %q}
current-context: c
`, server, ns)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// homeFile makes home/.kube/config the default kubeconfig for the test:
// client-go reads $HOME once, at init.
func homeFile(t *testing.T, home string) {
	t.Helper()
	t.Setenv("HOME", home)
	old := clientcmd.RecommendedHomeFile
	t.Cleanup(func() { clientcmd.RecommendedHomeFile = old })
	clientcmd.RecommendedHomeFile = filepath.Join(home, ".kube", "config")
}

// credentials sets up, for one case, the sources restConfig may use: a
// --kubeconfig file, $KUBECONFIG, in-cluster credentials and
// ~/.kube/config, each naming its own server.
type credentials struct {
	flag, env, inCluster, home bool
}

const (
	flagServer      = "https://flag.example:6443"
	envServer       = "https://env.example:6443"
	inClusterServer = "https://in-cluster.example:443"
	homeServer      = "https://home.example:6443"
)

func (c credentials) setup(t *testing.T) (kubeconfig string) {
	t.Helper()
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if c.home {
		kubeconfigFile(t, filepath.Join(home, ".kube"), homeServer, "")
	}
	homeFile(t, home)
	t.Setenv("KUBECONFIG", "")
	if c.env {
		t.Setenv("KUBECONFIG", kubeconfigFile(t, filepath.Join(dir, "env"), envServer, ""))
	}
	old := inClusterConfig
	t.Cleanup(func() { inClusterConfig = old })
	inClusterConfig = func() (*rest.Config, error) {
		if c.inCluster {
			return &rest.Config{Host: inClusterServer}, nil
		}
		return nil, rest.ErrNotInCluster
	}
	if c.flag {
		return kubeconfigFile(t, filepath.Join(dir, "flag"), flagServer, "")
	}
	return ""
}

// Credentials come in controller-runtime's order: --kubeconfig, then
// $KUBECONFIG, then in-cluster, then ~/.kube/config. $KUBECONFIG used to
// lose to in-cluster credentials.
func TestRestConfigOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		have credentials
		want string
	}{
		{"--kubeconfig first", credentials{flag: true, env: true, inCluster: true, home: true}, flagServer},
		{"$KUBECONFIG before in-cluster", credentials{env: true, inCluster: true, home: true}, envServer},
		{"in-cluster before ~/.kube/config", credentials{inCluster: true, home: true}, inClusterServer},
		{"~/.kube/config last", credentials{home: true}, homeServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := restConfig(tc.have.setup(t))
			if err != nil {
				t.Fatal(err)
			}
			if rc.Host != tc.want {
				t.Errorf("credentials for %s, want %s", rc.Host, tc.want)
			}
		})
	}
}

func TestRestConfigNone(t *testing.T) {
	credentials{}.setup(t)
	_, err := restConfig("")
	var ue *usageError
	if !errors.As(err, &ue) || ue.code != ExitUnreachable || !strings.Contains(ue.msg, "no credentials") {
		t.Errorf("restConfig with no credentials = %v, want exit %d, no credentials", err, ExitUnreachable)
	}
}

// $KUBECONFIG naming no file is a mistake to report, not a reason to fall
// back to in-cluster credentials of maybe another cluster.
func TestRestConfigKubeconfigEnvMissing(t *testing.T) {
	credentials{inCluster: true}.setup(t)
	missing := filepath.Join(t.TempDir(), "nope")
	t.Setenv("KUBECONFIG", missing)
	_, err := restConfig("")
	var ue *usageError
	if !errors.As(err, &ue) || ue.code != ExitConfig {
		t.Fatalf("restConfig = %v, want exit %d", err, ExitConfig)
	}
	if want := "elector: $KUBECONFIG=" + missing + ": no kubeconfig there (missing or empty files); fix the path, or unset KUBECONFIG to use in-cluster credentials"; ue.Error() != want {
		t.Errorf("message\n got: %s\nwant: %s", ue.Error(), want)
	}
}

// Outside a cluster the Lease's namespace is the kubeconfig context's,
// from the same file the credentials come from.
func TestKubeconfigNamespace(t *testing.T) {
	dir := t.TempDir()
	homeFile(t, filepath.Join(dir, "home"))
	t.Setenv("KUBECONFIG", "")
	if got := kubeconfigNamespace(""); got != "" {
		t.Errorf("no kubeconfig: %q, want none", got)
	}
	kubeconfigFile(t, filepath.Join(dir, "home", ".kube"), homeServer, "team-home")
	if got := kubeconfigNamespace(""); got != "team-home" {
		t.Errorf("~/.kube/config: %q, want team-home", got)
	}
	t.Setenv("KUBECONFIG", kubeconfigFile(t, filepath.Join(dir, "env"), envServer, "team-env"))
	if got := kubeconfigNamespace(""); got != "team-env" {
		t.Errorf("$KUBECONFIG: %q, want team-env", got)
	}
	flag := kubeconfigFile(t, filepath.Join(dir, "flag"), flagServer, "team-flag")
	if got := kubeconfigNamespace(flag); got != "team-flag" {
		t.Errorf("--kubeconfig: %q, want team-flag", got)
	}
	none := kubeconfigFile(t, filepath.Join(dir, "none"), flagServer, "")
	if got := kubeconfigNamespace(none); got != "" {
		t.Errorf("context without a namespace: %q, want none", got)
	}

	// Through parseConfig, with the real environment's loader.
	env := fakeEnv(nil)
	env.kubeconfigNamespace = kubeconfigNamespace
	c, err := parseConfig([]string{"--election=x", "--kubeconfig=" + flag}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.namespace != "team-flag" {
		t.Errorf("parseConfig: namespace %q, want team-flag", c.namespace)
	}
	c, err = parseConfig([]string{"--election=x", "--kubeconfig=" + none}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.namespace != "default" {
		t.Errorf("parseConfig, context without a namespace: %q, want default", c.namespace)
	}
}

// --kube-api-qps and --kube-api-burst reach every API client the sidecar
// builds: each has a token bucket of that rate and that burst, not
// client-go's 5 and 10.
func TestNewClientsRateLimit(t *testing.T) {
	c, err := parseConfig([]string{"--election=x", "--kube-api-qps=0.001", "--kube-api-burst=7"}, fakeEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	kc, err := newClients(&rest.Config{Host: "https://127.0.0.1:1"}, c.kubeAPIQPS, c.kubeAPIBurst, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for name, ri := range map[string]rest.Interface{"coordination": kc.coordination, "core": kc.core, "raw": kc.raw} {
		rl := ri.GetRateLimiter()
		if rl == nil {
			t.Fatalf("%s client: no rate limiter", name)
		}
		if rl.QPS() != c.kubeAPIQPS {
			t.Errorf("%s client: QPS %v, want %v", name, rl.QPS(), c.kubeAPIQPS)
		}
		// At 0.001 QPS no token comes back during the test: the burst is
		// what a fresh bucket admits at once.
		n := 0
		for rl.TryAccept() && n < 100 {
			n++
		}
		if n != c.kubeAPIBurst {
			t.Errorf("%s client: admits %d requests at once, want the burst %d", name, n, c.kubeAPIBurst)
		}
	}

	// Without the flags: the defaults, not client-go's 5.
	d, err := parseConfig([]string{"--election=x"}, fakeEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	kc, err = newClients(&rest.Config{Host: "https://127.0.0.1:1"}, d.kubeAPIQPS, d.kubeAPIBurst, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if got := kc.coordination.GetRateLimiter().QPS(); got != defaultKubeAPIQPS {
		t.Errorf("default QPS %v, want %d", got, defaultKubeAPIQPS)
	}
}
