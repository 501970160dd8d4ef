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

package controlplane

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersionsMatchKubeModule guards against bumping test/kube without the
// version constants, which name the cache directory: a stale cache would
// silently keep serving the old binaries.
func TestVersionsMatchKubeModule(t *testing.T) {
	dir, err := kubeModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"k8s.io/kubernetes " + KubernetesVersion,
		"go.etcd.io/etcd/server/v3 " + EtcdVersion,
	} {
		if !strings.Contains(string(data), "\t"+want) && !strings.Contains(string(data), "require "+want) {
			t.Errorf("%s/go.mod does not require %s", dir, want)
		}
	}
}

func TestBinariesFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	apiserver, etcd := filepath.Join(dir, "a"), filepath.Join(dir, "e")
	for _, p := range []string{apiserver, etcd} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(EnvKubeAPIServer, apiserver)
	t.Setenv(EnvEtcd, etcd)
	t.Setenv(EnvCacheDir, filepath.Join(dir, "unused"))

	gotAPIServer, gotEtcd, err := Binaries(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if gotAPIServer != apiserver || gotEtcd != etcd {
		t.Errorf("Binaries() = %s, %s; want %s, %s", gotAPIServer, gotEtcd, apiserver, etcd)
	}
	if _, err := os.Stat(filepath.Join(dir, "unused")); !os.IsNotExist(err) {
		t.Errorf("Binaries() touched the cache directory: %v", err)
	}

	if err := os.Chmod(etcd, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Binaries(t.Context(), nil); err == nil || !strings.Contains(err.Error(), EnvEtcd) {
		t.Errorf("Binaries() with a non-executable %s: error %v, want one naming the variable", EnvEtcd, err)
	}
}

func TestBinariesFromCache(t *testing.T) {
	root := t.TempDir()
	t.Setenv(EnvKubeAPIServer, "")
	t.Setenv(EnvEtcd, "")
	t.Setenv(EnvCacheDir, root)
	dir := filepath.Join(root, "k8s-"+KubernetesVersion+"-etcd-"+EtcdVersion)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{apiserverBinary, etcdBinary} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	apiserver, etcd, err := Binaries(t.Context(), &out)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, apiserverBinary); apiserver != want {
		t.Errorf("kube-apiserver = %s, want %s", apiserver, want)
	}
	if want := filepath.Join(dir, etcdBinary); etcd != want {
		t.Errorf("etcd = %s, want %s", etcd, want)
	}
	if out.Len() != 0 {
		t.Errorf("Binaries() printed %q with a complete cache, want nothing", out.String())
	}
}

func TestBuildProgress(t *testing.T) {
	p := newBuildProgress()
	for _, chunk := range []string{
		"go: downloading k8s.io/kubernetes v1.37.2\n",
		"internal/goarch\ninternal/by", "telite\n",
		"# k8s.io/broken\n",
		"broken/x.go:1:1: syntax error\n",
		"k8s.io/kubernetes/cmd/kube-apiserver\n",
		"unterminated",
	} {
		if _, err := p.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := p.summary(), "compiled 3 packages, downloaded 1 modules"; got != want {
		t.Errorf("summary() = %q, want %q", got, want)
	}
	tail := p.tail()
	for _, want := range []string{"  broken/x.go:1:1: syntax error\n", "  unterminated\n"} {
		if !strings.Contains(tail, want) {
			t.Errorf("tail() = %q, want it to contain %q", tail, want)
		}
	}
}

func TestPrefixWriter(t *testing.T) {
	var out bytes.Buffer
	w := &prefixWriter{prefix: "[etcd] ", w: &out}
	for _, chunk := range []string{"one\ntw", "o\n", "three"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := out.String(), "[etcd] one\n[etcd] two\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}
