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

package e2e

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// kustomizations are the directories of deploy/ that must render.
var kustomizations = []string{"base", "examples/nginx", "examples/exec"}

// TestManifestsRenderAsWithKubectl checks that the in-process rendering the
// tests apply is what `kubectl kustomize` prints, when kubectl is here.
func TestManifestsRenderAsWithKubectl(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed; the other tests render deploy/ in process")
	}
	dir, err := sidecar.DeployDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kustomizations {
		m := render(t, k)
		out, err := exec.CommandContext(ctx(t), kubectl, "kustomize", filepath.Join(dir, k)).Output()
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v", k, err)
		}
		if !bytes.Equal(out, m.YAML) {
			t.Errorf("kubectl kustomize %s differs from the in-process rendering:\n--- kubectl\n%s\n--- in process\n%s", k, out, m.YAML)
		}
	}
}

// TestExamplesAreConsistent checks what a typo in the examples would break
// silently in a cluster: the names that must match, and the settings the
// seed's Deployment lacked.
func TestExamplesAreConsistent(t *testing.T) {
	for _, k := range []string{"examples/nginx", "examples/exec"} {
		t.Run(k, func(t *testing.T) {
			m := render(t, k)
			lease := election(t, m)
			spec := m.Deployment.Spec.Template.Spec
			c, err := m.ElectorContainer()
			if err != nil {
				t.Fatal(err)
			}
			args := sidecar.Args(c)
			if got, _ := sidecar.Flag(args, "election"); got != lease {
				t.Errorf("--election=%s, but the Role grants the Lease %q", got, lease)
			}
			if spec.ServiceAccountName != m.ServiceAccount.Name {
				t.Errorf("serviceAccountName %q, want %q", spec.ServiceAccountName, m.ServiceAccount.Name)
			}
			if s := m.RoleBinding.Subjects; len(s) != 1 || s[0].Kind != "ServiceAccount" || s[0].Name != m.ServiceAccount.Name {
				t.Errorf("RoleBinding subjects %+v, want the ServiceAccount %s", s, m.ServiceAccount.Name)
			}
			if r := m.RoleBinding.RoleRef; r.Kind != "Role" || r.Name != m.Role.Name {
				t.Errorf("RoleBinding refers to %s %s, want Role %s", r.Kind, r.Name, m.Role.Name)
			}
			for _, env := range []struct{ name, field string }{{"POD_NAME", "metadata.name"}, {"POD_NAMESPACE", "metadata.namespace"}} {
				i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == env.name })
				if i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.FieldRef == nil || c.Env[i].ValueFrom.FieldRef.FieldPath != env.field {
					t.Errorf("$%s is not set from %s with the Downward API", env.name, env.field)
				}
			}
			checkProbes(t, c, args)
			checkHardened(t, c)
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("container %s: resources %+v, want cpu and memory requests and a memory limit", c.Name, c.Resources)
			}
			if p := spec.SecurityContext; p == nil || p.RunAsNonRoot == nil || !*p.RunAsNonRoot {
				t.Errorf("the Pod does not require runAsNonRoot")
			}

			label, labeled := sidecar.Flag(args, "leader-label")
			podRules := slices.ContainsFunc(sidecar.Rules(m.Role), func(r rbac.Rule) bool { return r.Resource == "pods" })
			if labeled != podRules {
				t.Errorf("--leader-label set: %t, but the Role grants pods: %t (add or drop components/leader-label)", labeled, podRules)
			}
			if labeled {
				key, value, _ := strings.Cut(label, "=")
				if m.Service == nil || m.Service.Spec.Selector[key] != value {
					t.Errorf("no Service selects the leader label %s", label)
				}
				if *m.Deployment.Spec.Replicas < 2 {
					t.Errorf("%d replicas: nothing to elect", *m.Deployment.Spec.Replicas)
				}
			}
		})
	}
}

func checkProbes(t *testing.T, c *corev1.Container, args []string) {
	t.Helper()
	// The probes are served on --health-probe-bind-address when given,
	// else on --http.
	flag := "health-probe-bind-address"
	addr, ok := sidecar.Flag(args, flag)
	if !ok {
		flag = "http"
		addr, ok = sidecar.Flag(args, flag)
	}
	if !ok || addr == "0" {
		t.Errorf("container %s: no --http nor --health-probe-bind-address, so no probes", c.Name)
		return
	}
	_, port, _ := strings.Cut(addr, ":")
	i := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return strconv.Itoa(int(p.ContainerPort)) == port })
	if i < 0 {
		t.Errorf("container %s: --%s=%s, but no containerPort %s", c.Name, flag, addr, port)
		return
	}
	for _, p := range []struct {
		probe *corev1.Probe
		kind  string
		path  string
	}{{c.LivenessProbe, "liveness", "/healthz"}, {c.ReadinessProbe, "readiness", "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("container %s: no HTTP %s probe", c.Name, p.kind)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path {
			// In particular never /leader or /: readiness gated on
			// leadership stalls rolling updates.
			t.Errorf("container %s: %s probe on %s, want %s", c.Name, p.kind, g.Path, p.path)
		}
		if g.Port.String() != c.Ports[i].Name && g.Port.String() != port {
			t.Errorf("container %s: %s probe on port %s, want %s", c.Name, p.kind, g.Port.String(), port)
		}
	}
}

func checkHardened(t *testing.T, c *corev1.Container) {
	t.Helper()
	s := c.SecurityContext
	switch {
	case s == nil:
		t.Errorf("container %s: no securityContext", c.Name)
	case s.RunAsNonRoot == nil || !*s.RunAsNonRoot:
		t.Errorf("container %s: runAsNonRoot not set", c.Name)
	case s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem:
		t.Errorf("container %s: readOnlyRootFilesystem not set", c.Name)
	case s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation:
		t.Errorf("container %s: allowPrivilegeEscalation not false", c.Name)
	case s.Capabilities == nil || !slices.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(s.Capabilities.Add) > 0:
		t.Errorf("container %s: capabilities %+v, want drop ALL", c.Name, s.Capabilities)
	case s.SeccompProfile == nil || s.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("container %s: seccompProfile %+v, want RuntimeDefault", c.Name, s.SeccompProfile)
	}
}
