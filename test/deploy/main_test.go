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

// Package deploy tests the manifests of deploy/ on a real kube-apiserver:
// that every kustomization renders and passes a server-side dry run, and
// that the cluster-scoped policies do what their comments promise.
package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/elector-dev/elector/test/controlplane"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// cp is the control plane shared by the tests of this package. The tests
// install cluster-scoped objects (an admission policy, a FlowSchema), so
// they have a control plane of their own and do not run in parallel.
var cp *controlplane.ControlPlane

// guard bounds every wait: a failure deadline, not a timing assertion.
const guard = 60 * time.Second

// poll paces the waits for the API server to take up a new policy.
const poll = 50 * time.Millisecond

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunMainNoLeaks(m, &cp))
}

// ctx is the test's context with the failure deadline.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), guard)
	t.Cleanup(cancel)
	return c
}

func admin(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// deployDir is the repository's deploy/ directory.
func deployDir(t *testing.T) string {
	t.Helper()
	dir, err := sidecar.DeployDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// render builds the kustomization in dir as `kubectl kustomize` would.
func render(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy // kubectl kustomize's default order
	rm, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("unable to render %s: %v", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range rm.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatalf("unable to decode %s %s of %s: %v", r.GetKind(), r.GetName(), dir, err)
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// applier creates objects with the dynamic client, as the admin.
type applier struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

func newApplier(t *testing.T) *applier {
	t.Helper()
	cfg := cp.AdminConfig()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

func (a *applier) resource(o *unstructured.Unstructured, ns string) (dynamic.ResourceInterface, error) {
	gvk := o.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("unable to map %s: %w", gvk, err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.dyn.Resource(m.Resource).Namespace(ns), nil
	}
	return a.dyn.Resource(m.Resource), nil
}

// create creates every object (namespaced ones in ns); dryRun makes it a
// server-side dry run: admission, validation and defaulting, nothing
// stored.
func (a *applier) create(ctx context.Context, objs []*unstructured.Unstructured, ns string, dryRun bool) error {
	opts := metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	for _, o := range objs {
		in := ns
		if o.GetNamespace() != "" {
			in = o.GetNamespace() // deploy/migrate-from-0.5 names "default"
		}
		r, err := a.resource(o, in)
		if err != nil {
			return err
		}
		if _, err := r.Create(ctx, o, opts); err != nil {
			return fmt.Errorf("unable to create %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}

// deleteAll deletes the objects, ignoring those already gone.
func (a *applier) deleteAll(ctx context.Context, objs []*unstructured.Unstructured, ns string) error {
	for _, o := range objs {
		r, err := a.resource(o, ns)
		if err != nil {
			return err
		}
		if err := r.Delete(ctx, o.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("unable to delete %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}

// install creates the cluster-scoped kustomization deploy/<rel> and
// deletes it when the test ends.
func install(t *testing.T, rel string) {
	t.Helper()
	objs := render(t, filepath.Join(deployDir(t), rel))
	a := newApplier(t)
	if err := a.create(ctx(t), objs, "", false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := a.deleteAll(c, objs, ""); err != nil {
			t.Error(err)
		}
	})
}

// namespace creates a namespace for the test.
func namespace(t *testing.T) string {
	t.Helper()
	ns := "deploy-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(ns) > 63 {
		ns = strings.TrimRight(ns[:63], "-")
	}
	if _, err := admin(t).CoreV1().Namespaces().Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// overlay writes a kustomization into a new temporary directory that
// composes deploy/base with the components (paths relative to deploy/;
// kustomize takes only relative paths) under namePrefix prefix, and
// returns the directory.
func overlay(t *testing.T, prefix string, components ...string) string {
	t.Helper()
	dir := t.TempDir()
	deploy, err := filepath.Rel(dir, deployDir(t))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if prefix != "" {
		fmt.Fprintf(&b, "namePrefix: %s\n", prefix)
	}
	fmt.Fprintf(&b, "resources:\n- %s\n", filepath.Join(deploy, "base"))
	if len(components) > 0 {
		b.WriteString("components:\n")
		for _, c := range components {
			fmt.Fprintf(&b, "- %s\n", filepath.Join(deploy, c))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// election writes a user's own kustomization of one election in a
// temporary directory, as deploy/README.md tells a user to: namePrefix,
// deploy/base, a Deployment and a leader-only Service (those of
// examples/nginx, with the election's name written once, in the elector
// container's ELECTION_NAME), and components/leader-label and
// components/election-name. It returns the directory.
func election(t *testing.T, prefix, name string) string {
	t.Helper()
	dir := t.TempDir()
	deploy, err := filepath.Rel(dir, deployDir(t))
	if err != nil {
		t.Fatal(err)
	}
	example := filepath.Join(deployDir(t), "examples", "nginx")
	d, err := os.ReadFile(filepath.Join(example, "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const written = "value: elect-nginx-deploy"
	if strings.Count(string(d), written) != 1 {
		t.Fatalf("examples/nginx/deployment.yaml has %d times %q, want the election's name once, in ELECTION_NAME", strings.Count(string(d), written), written)
	}
	d = []byte(strings.Replace(string(d), written, "value: "+name, 1))
	svc, err := os.ReadFile(filepath.Join(example, "service.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	k := fmt.Sprintf(`namePrefix: %s
resources:
- %s
- deployment.yaml
- service.yaml
components:
- %s
- %s
`, prefix, filepath.Join(deploy, "base"), filepath.Join(deploy, "components", "leader-label"), filepath.Join(deploy, "components", "election-name"))
	for file, data := range map[string][]byte{"kustomization.yaml": []byte(k), "deployment.yaml": d, "service.yaml": svc} {
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
