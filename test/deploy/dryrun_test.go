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

package deploy

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// kustomizations returns every directory of deploy/ with a
// kustomization.yaml, split into Kustomizations and Components, relative
// to deploy/.
func kustomizations(t *testing.T) (kustomizations, components []string) {
	t.Helper()
	dir := deployDir(t)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "kustomization.yaml" {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var k struct{ Kind string }
		if err := yaml.Unmarshal(data, &k); err != nil {
			return fmt.Errorf("unable to read %s: %w", path, err)
		}
		rel, err := filepath.Rel(dir, filepath.Dir(path))
		if err != nil {
			return err
		}
		if k.Kind == "Component" {
			components = append(components, rel)
		} else {
			kustomizations = append(kustomizations, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return kustomizations, components
}

// TestManifestsPassServerSideDryRun renders every kustomization of
// deploy/, and every component composed onto deploy/base, and creates
// what they render as a server-side dry run (strict field validation,
// admission, defaulting) in a namespace of its own.
func TestManifestsPassServerSideDryRun(t *testing.T) {
	ks, comps := kustomizations(t)
	for _, want := range []string{"base", "examples/nginx", "cluster/leader-label-policy", "cluster/priority"} {
		if !slices.Contains(ks, want) {
			t.Fatalf("deploy/%s not found among %v", want, ks)
		}
	}
	dir := deployDir(t)
	a := newApplier(t)
	ns := namespace(t)
	for _, k := range ks {
		t.Run(k, func(t *testing.T) {
			objs := render(t, filepath.Join(dir, k))
			if len(objs) == 0 {
				t.Fatalf("deploy/%s renders nothing", k)
			}
			objs = withoutOperatorKinds(t, objs)
			if err := a.create(ctx(t), objs, ns, true); err != nil {
				t.Fatalf("deploy/%s: %v", k, err)
			}
		})
	}
	for _, c := range comps {
		t.Run("base+"+c, func(t *testing.T) {
			if err := a.create(ctx(t), render(t, overlay(t, "", c)), ns, true); err != nil {
				t.Fatalf("deploy/base with deploy/%s: %v", c, err)
			}
		})
	}
}

// TestTwoElectionsInOneNamespace creates (for real) deploy/base twice in
// one namespace under two namePrefixes, as a user running two elections
// would: nothing collides, and each RoleBinding grants its own Role to its
// own ServiceAccount.
func TestTwoElectionsInOneNamespace(t *testing.T) {
	a := newApplier(t)
	ns := namespace(t)
	for _, prefix := range []string{"orders-", "payments-"} {
		if err := a.create(ctx(t), render(t, overlay(t, prefix, "components/leader-label")), ns, false); err != nil {
			t.Fatalf("namePrefix %s: %v", prefix, err)
		}
	}
	for _, prefix := range []string{"orders-", "payments-"} {
		rb, err := admin(t).RbacV1().RoleBindings(ns).Get(ctx(t), prefix+"elector", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rb.RoleRef.Name != prefix+"elector" || len(rb.Subjects) != 1 || rb.Subjects[0].Name != prefix+"elector" {
			t.Errorf("RoleBinding %s binds Role %s to %+v, want Role and ServiceAccount %s", rb.Name, rb.RoleRef.Name, rb.Subjects, prefix+"elector")
		}
	}
}

// TestProductionExample checks what deploy/examples/production promises
// beyond a dry run: elector is a native sidecar (its JSON patch moves a
// container by position), a PodDisruptionBudget and topology spread cover
// the Deployment's Pods, and the NetworkPolicy admits elector's port.
func TestProductionExample(t *testing.T) {
	objs := render(t, filepath.Join(deployDir(t), "examples", "production"))
	kinds := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		kinds[o.GetKind()] = o
	}
	for _, k := range []string{"Deployment", "PodDisruptionBudget", "NetworkPolicy", "Role", "Service"} {
		if kinds[k] == nil {
			t.Fatalf("deploy/examples/production renders no %s", k)
		}
	}
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(kinds["Deployment"].Object, &d); err != nil {
		t.Fatal(err)
	}
	spec := d.Spec.Template.Spec
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Name != "elector" {
		t.Fatalf("init containers %v, want elector alone (the patch moves containers/0: is elector still the first container of examples/nginx?)", names(spec.InitContainers))
	}
	if p := spec.InitContainers[0].RestartPolicy; p == nil || *p != corev1.ContainerRestartPolicyAlways {
		t.Errorf("elector's restartPolicy %v, want Always (a native sidecar)", p)
	}
	if slices.ContainsFunc(spec.Containers, func(c corev1.Container) bool { return c.Name == "elector" }) {
		t.Errorf("elector is both a container and an init container")
	}
	if len(spec.TopologySpreadConstraints) == 0 {
		t.Errorf("no topologySpreadConstraints")
	}
	for _, c := range spec.TopologySpreadConstraints {
		if c.LabelSelector == nil || c.LabelSelector.MatchLabels["app"] != d.Spec.Selector.MatchLabels["app"] {
			t.Errorf("topology spread on %s selects %v, not the Deployment's Pods", c.TopologyKey, c.LabelSelector)
		}
	}
	if sel, _, _ := unstructured.NestedStringMap(kinds["PodDisruptionBudget"].Object, "spec", "selector", "matchLabels"); sel["app"] != d.Spec.Selector.MatchLabels["app"] {
		t.Errorf("the PodDisruptionBudget selects %v, not the Deployment's Pods", sel)
	}
}

func names(cs []corev1.Container) []string {
	var n []string
	for _, c := range cs {
		n = append(n, c.Name)
	}
	return n
}

// operatorGroup is Prometheus Operator's API group (PodMonitor,
// PrometheusRule in deploy/monitoring): a bare kube-apiserver does not
// serve its CRDs, so those objects cannot be dry-run here. They are
// generated and checked by tools/monitoring's tests and promtool
// (make test-rules).
const operatorGroup = "monitoring.coreos.com"

// withoutOperatorKinds returns objs without Prometheus Operator's kinds,
// logging what it leaves out.
func withoutOperatorKinds(t *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	t.Helper()
	var kept []*unstructured.Unstructured
	for _, o := range objs {
		if o.GroupVersionKind().Group == operatorGroup {
			t.Logf("not dry-run: %s %s (%s CRDs are not installed on the test control plane)", o.GetKind(), o.GetName(), operatorGroup)
			continue
		}
		kept = append(kept, o)
	}
	return kept
}
