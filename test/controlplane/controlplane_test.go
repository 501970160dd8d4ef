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

package controlplane_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/elector-dev/elector/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunMainNoLeaks(m, &cp))
}

func TestUsers(t *testing.T) {
	ctx := t.Context()
	admin := newClient(t, cp.AdminConfig())
	if got := whoami(t, admin); got.Username != controlplane.AdminUser || !slices.Contains(got.Groups, "system:masters") {
		t.Errorf("admin authenticates as %s %v, want %s in system:masters", got.Username, got.Groups, controlplane.AdminUser)
	}
	if _, err := admin.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("admin cannot list namespaces: %v", err)
	}

	cfg, err := cp.UserConfig(controlplane.UnprivilegedUser)
	if err != nil {
		t.Fatal(err)
	}
	alice := newClient(t, cfg)
	if got := whoami(t, alice); got.Username != controlplane.UnprivilegedUser || !slices.Contains(got.Groups, "system:authenticated") {
		t.Errorf("alice authenticates as %s %v, want %s in system:authenticated", got.Username, got.Groups, controlplane.UnprivilegedUser)
	}
	if _, err := alice.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice lists namespaces: error %v, want Forbidden", err)
	}

	if _, err := cp.UserConfig("mallory"); err == nil {
		t.Error("UserConfig(mallory) succeeded, want an error")
	}
}

func TestServiceAccountConfig(t *testing.T) {
	cfg, err := cp.ServiceAccountConfig(t.Context(), "sa-test", "candidate")
	if err != nil {
		t.Fatal(err)
	}
	want := "system:serviceaccount:sa-test:candidate"
	if got := whoami(t, newClient(t, cfg)); got.Username != want {
		t.Errorf("ServiceAccount authenticates as %s, want %s", got.Username, want)
	}
	// Existing namespace and ServiceAccount are reused.
	if _, err := cp.ServiceAccountConfig(t.Context(), "sa-test", "candidate"); err != nil {
		t.Errorf("second ServiceAccountConfig: %v", err)
	}
}

func TestKubeconfig(t *testing.T) {
	cfg, err := cp.ServiceAccountConfig(t.Context(), "kubeconfig-test", "sidecar")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := controlplane.WriteKubeconfig(cfg, path); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		path:            "system:serviceaccount:kubeconfig-test:sidecar",
		cp.Kubeconfig(): controlplane.AdminUser,
	} {
		loaded, err := clientcmd.BuildConfigFromFlags("", file)
		if err != nil {
			t.Fatalf("unable to load %s: %v", file, err)
		}
		if got := whoami(t, newClient(t, loaded)); got.Username != want {
			t.Errorf("kubeconfig %s authenticates as %s, want %s", file, got.Username, want)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600", got)
	}
}

func TestRestartAPIServer(t *testing.T) {
	ctx := t.Context()
	admin := newClient(t, cp.AdminConfig())
	saConfig, err := cp.ServiceAccountConfig(ctx, "restart", "survivor")
	if err != nil {
		t.Fatal(err)
	}
	createConfigMap(t, admin, "restart", "before-apiserver-restart")

	cp.StopAPIServer()
	if pid, _ := cp.PIDs(); pid != 0 {
		t.Fatalf("kube-apiserver still running as %d after StopAPIServer", pid)
	}
	reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := admin.CoreV1().Namespaces().Get(reqCtx, "restart", metav1.GetOptions{}); err == nil {
		t.Fatal("request succeeded while kube-apiserver was stopped")
	}
	if err := cp.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}

	// Same port, certificate, tokens and data.
	if _, err := admin.CoreV1().ConfigMaps("restart").Get(ctx, "before-apiserver-restart", metav1.GetOptions{}); err != nil {
		t.Errorf("ConfigMap after restart: %v", err)
	}
	if got := whoami(t, newClient(t, saConfig)); got.Username != "system:serviceaccount:restart:survivor" {
		t.Errorf("ServiceAccount token after restart authenticates as %s", got.Username)
	}
}

func TestRestartEtcd(t *testing.T) {
	ctx := t.Context()
	admin := newClient(t, cp.AdminConfig())
	createConfigMap(t, admin, "restart-etcd", "before-etcd-restart")

	cp.StopEtcd()
	if _, pid := cp.PIDs(); pid != 0 {
		t.Fatalf("etcd still running as %d after StopEtcd", pid)
	}
	if err := cp.StartEtcd(ctx); err != nil {
		t.Fatal(err)
	}
	// kube-apiserver reconnects to etcd with a backoff.
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, lastErr = admin.CoreV1().ConfigMaps("restart-etcd").Get(ctx, "before-etcd-restart", metav1.GetOptions{})
		return lastErr == nil, nil
	})
	if err != nil {
		t.Fatalf("ConfigMap after etcd restart: %v (last error: %v)", err, lastErr)
	}
}

func createConfigMap(t *testing.T, client *kubernetes.Clientset, namespace, name string) {
	t.Helper()
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("unable to create namespace %s: %v", namespace, err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := client.CoreV1().ConfigMaps(namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("unable to create ConfigMap %s/%s: %v", namespace, name, err)
	}
}

func whoami(t *testing.T, client *kubernetes.Clientset) authenticationv1.UserInfo {
	t.Helper()
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("unable to review the user: %v", err)
	}
	return review.Status.UserInfo
}

func newClient(t *testing.T, cfg *rest.Config) *kubernetes.Clientset {
	t.Helper()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("unable to create a client: %v", err)
	}
	return client
}
