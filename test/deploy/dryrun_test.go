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
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/elector-dev/elector/test/internal/sidecar"
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
			dir := overlay(t, "", c)
			if c == "components/election-name" {
				// It copies a Deployment's ELECTION_NAME: composed with
				// one, as a user's kustomization does.
				dir = election(t, "", "my-election")
			}
			if err := a.create(ctx(t), render(t, dir), ns, true); err != nil {
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

	// Two whole elections, each with its name written once (ELECTION_NAME
	// of its Deployment): each Role grants its own Lease, each Service
	// selects its own leader label, and each sidecar's flags, as the
	// kubelet expands them, name that Lease and label.
	t.Run("examples", func(t *testing.T) {
		ns := namespace(t)
		for _, e := range []struct{ prefix, name string }{{"orders-", "orders"}, {"payments-", "payments"}} {
			if err := a.create(ctx(t), render(t, election(t, e.prefix, e.name)), ns, false); err != nil {
				t.Fatalf("election %s: %v", e.name, err)
			}
		}
		for _, e := range []struct{ prefix, name string }{{"orders-", "orders"}, {"payments-", "payments"}} {
			role, err := admin(t).RbacV1().Roles(ns).Get(ctx(t), e.prefix+"elector", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var named []string
			for _, r := range role.Rules {
				named = append(named, r.ResourceNames...)
			}
			if !slices.Equal(named, []string{e.name}) {
				t.Errorf("Role %s names %v, want the Lease %s alone", role.Name, named, e.name)
			}
			svc, err := admin(t).CoreV1().Services(ns).Get(ctx(t), e.prefix+"nginx-leader", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := svc.Spec.Selector["elector.dev/leader"]; got != e.name {
				t.Errorf("Service %s selects elector.dev/leader=%q, want %q", svc.Name, got, e.name)
			}
			d, err := admin(t).AppsV1().Deployments(ns).Get(ctx(t), e.prefix+"nginx-deploy", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			spec := d.Spec.Template.Spec
			if spec.ServiceAccountName != e.prefix+"elector" {
				t.Errorf("Deployment %s runs as %s, want %s", d.Name, spec.ServiceAccountName, e.prefix+"elector")
			}
			i := slices.IndexFunc(spec.Containers, func(c corev1.Container) bool { return c.Name == "elector" })
			if i < 0 {
				t.Fatalf("Deployment %s has no elector container", d.Name)
			}
			args := sidecar.ContainerArgs(&spec.Containers[i])
			if got, _ := sidecar.Flag(args, "election"); got != e.name {
				t.Errorf("Deployment %s: --election=%s, want %s (args %q)", d.Name, got, e.name, args)
			}
			if got, _ := sidecar.Flag(args, "leader-label"); got != "elector.dev/leader="+e.name {
				t.Errorf("Deployment %s: --leader-label=%s, want elector.dev/leader=%s", d.Name, got, e.name)
			}
		}
	})
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
	checkProductionPorts(t, &spec.InitContainers[0], kinds["NetworkPolicy"], d.Spec.Selector.MatchLabels["app"])
}

// checkProductionPorts checks the production example's ports: --http,
// probes and metrics each on a port of its own, the probes on the probe
// port, and the NetworkPolicy admitting --http from the app's Pods only,
// the metrics from the monitoring namespace only, and the probe port
// from nobody (the kubelet's probes come from the node, which a
// NetworkPolicy does not filter).
func checkProductionPorts(t *testing.T, c *corev1.Container, np *unstructured.Unstructured, app string) {
	t.Helper()
	args := sidecar.ContainerArgs(c)
	port := func(flag string) int32 {
		addr, ok := sidecar.Flag(args, flag)
		if !ok {
			t.Fatalf("elector has no --%s: %q", flag, args)
		}
		_, p, _ := strings.Cut(addr, ":")
		n, err := strconv.Atoi(p)
		if err != nil || !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == int32(n) }) {
			t.Errorf("--%s=%s: no containerPort %s", flag, addr, p)
		}
		return int32(n)
	}
	httpPort, probePort, metricsPort := port("http"), port("health-probe-bind-address"), port("metrics-bind-address")
	if httpPort == probePort || httpPort == metricsPort || probePort == metricsPort {
		t.Fatalf("ports --http %d, probes %d, metrics %d: want three", httpPort, probePort, metricsPort)
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Fatalf("elector lacks an HTTP probe")
		}
		i := slices.IndexFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.HTTPGet.Port.String() })
		if p.HTTPGet.Port.IntValue() != int(probePort) && (i < 0 || c.Ports[i].ContainerPort != probePort) {
			t.Errorf("probe %s on port %s, want the probe port %d", p.HTTPGet.Path, p.HTTPGet.Port.String(), probePort)
		}
	}

	var policy networkingv1.NetworkPolicy
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(np.Object, &policy); err != nil {
		t.Fatal(err)
	}
	// from: who each elector port admits ("app" for the app's Pods,
	// "ns:NAME" for a namespace, "anyone" for a rule without from).
	from := map[int32][]string{}
	for _, r := range policy.Spec.Ingress {
		for _, p := range r.Ports {
			n := int32(p.Port.IntValue())
			if len(r.From) == 0 {
				from[n] = append(from[n], "anyone")
			}
			for _, peer := range r.From {
				switch {
				case peer.PodSelector != nil && peer.NamespaceSelector == nil && peer.PodSelector.MatchLabels["app"] == app:
					from[n] = append(from[n], "app")
				case peer.NamespaceSelector != nil && peer.PodSelector == nil:
					from[n] = append(from[n], "ns:"+peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
				default:
					from[n] = append(from[n], fmt.Sprintf("%+v", peer))
				}
			}
		}
	}
	for p, want := range map[int32][]string{httpPort: {"app"}, metricsPort: {"ns:monitoring"}, probePort: nil} {
		if !slices.Equal(from[p], want) {
			t.Errorf("the NetworkPolicy admits port %d from %v, want %v", p, from[p], want)
		}
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
