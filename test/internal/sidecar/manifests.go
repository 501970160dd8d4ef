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

package sidecar

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/elector-dev/elector/internal/rbac"
)

// Manifests are the objects of a rendered kustomization of deploy/: the
// RBAC of deploy/base, and for the examples a Deployment and a Service.
type Manifests struct {
	ServiceAccount *corev1.ServiceAccount
	Role           *rbacv1.Role
	RoleBinding    *rbacv1.RoleBinding
	Deployment     *appsv1.Deployment // nil in deploy/base
	Service        *corev1.Service    // nil in deploy/base
	// YAML is the rendered output, as `kubectl kustomize dir` prints it.
	YAML []byte
}

// Render builds the kustomization in dir in process, with the same library
// and defaults as `kubectl kustomize`, and decodes its objects. Every kind
// other than those of Manifests, and a second object of one kind, is an
// error: the tests would not apply it.
func Render(dir string) (*Manifests, error) {
	m, err := render(dir)
	if err != nil {
		return nil, err
	}
	if m.ServiceAccount == nil || m.Role == nil || m.RoleBinding == nil {
		return nil, fmt.Errorf("%s must render a ServiceAccount, a Role and a RoleBinding", dir)
	}
	return m, nil
}

// RenderRBAC is Render for a kustomization that grants a ServiceAccount
// of another kustomization, such as deploy/migrate-from-0.5: it must
// render a Role and a RoleBinding, and may render no ServiceAccount.
func RenderRBAC(dir string) (*Manifests, error) {
	m, err := render(dir)
	if err != nil {
		return nil, err
	}
	if m.Role == nil || m.RoleBinding == nil {
		return nil, fmt.Errorf("%s must render a Role and a RoleBinding", dir)
	}
	return m, nil
}

func render(dir string) (*Manifests, error) {
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy // kubectl kustomize's default order
	k := krusty.MakeKustomizer(opts)
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("unable to render %s: %w", dir, err)
	}
	m := &Manifests{}
	if m.YAML, err = rm.AsYaml(); err != nil {
		return nil, fmt.Errorf("unable to render %s: %w", dir, err)
	}
	for _, r := range rm.Resources() {
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("unable to encode %s %s: %w", r.GetKind(), r.GetName(), err)
		}
		var dst any
		switch kind := r.GetKind(); kind {
		case "ServiceAccount":
			dst = set(&m.ServiceAccount)
		case "Role":
			dst = set(&m.Role)
		case "RoleBinding":
			dst = set(&m.RoleBinding)
		case "Deployment":
			dst = set(&m.Deployment)
		case "Service":
			dst = set(&m.Service)
		default:
			return nil, fmt.Errorf("%s renders a %s %s, which the tests do not know", dir, kind, r.GetName())
		}
		if dst == nil {
			return nil, fmt.Errorf("%s renders more than one %s", dir, r.GetKind())
		}
		if err := json.Unmarshal(data, dst); err != nil {
			return nil, fmt.Errorf("unable to decode %s %s: %w", r.GetKind(), r.GetName(), err)
		}
	}
	return m, nil
}

// set allocates *p and returns it, or nil when *p is already set.
func set[T any](p **T) *T {
	if *p != nil {
		return nil
	}
	*p = new(T)
	return *p
}

// Election returns the name of the Lease the Role grants: the one
// resourceName of its rule on leases with get. It must equal --election.
func (m *Manifests) Election() (string, error) {
	for _, r := range m.Role.Rules {
		if slices.Contains(r.APIGroups, rbac.CoordinationGroup) && slices.Contains(r.Resources, "leases") &&
			slices.Contains(r.Verbs, "get") {
			if len(r.ResourceNames) != 1 {
				return "", fmt.Errorf("Role %s grants get on leases %v; want exactly one Lease name", m.Role.Name, r.ResourceNames)
			}
			return r.ResourceNames[0], nil
		}
	}
	return "", fmt.Errorf("Role %s grants no get on a Lease", m.Role.Name)
}

// Rules expands a Role into single permissions: one per API group,
// resource, verb and resource name.
func Rules(role *rbacv1.Role) []rbac.Rule {
	var out []rbac.Rule
	for _, p := range role.Rules {
		names := p.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range p.APIGroups {
			for _, res := range p.Resources {
				for _, v := range p.Verbs {
					for _, n := range names {
						out = append(out, rbac.Rule{Group: g, Resource: res, Verb: v, Name: n})
					}
				}
			}
		}
	}
	return out
}

// RoleOf returns a Role named name granting exactly rules, one PolicyRule
// each.
func RoleOf(name string, rules []rbac.Rule) *rbacv1.Role {
	role := &rbacv1.Role{}
	role.Name = name
	for _, r := range rules {
		p := rbacv1.PolicyRule{APIGroups: []string{r.Group}, Resources: []string{r.Resource}, Verbs: []string{r.Verb}}
		if r.Name != "" {
			p.ResourceNames = []string{r.Name}
		}
		role.Rules = append(role.Rules, p)
	}
	return role
}

// ElectorContainer returns the Deployment's container that runs elector:
// the one whose command or arguments set --election.
func (m *Manifests) ElectorContainer() (*corev1.Container, error) {
	if m.Deployment == nil {
		return nil, errors.New("no Deployment")
	}
	for i, c := range m.Deployment.Spec.Template.Spec.Containers {
		if slices.ContainsFunc(Args(&c), func(a string) bool {
			return strings.HasPrefix(a, "--election=")
		}) {
			return &m.Deployment.Spec.Template.Spec.Containers[i], nil
		}
	}
	return nil, fmt.Errorf("Deployment %s has no container with --election", m.Deployment.Name)
}

// Args returns the container's command and arguments as the kubelet
// passes them: $(VAR) expanded from the container's env (ExpandEnv).
func Args(c *corev1.Container) []string {
	env := envOf(c)
	out := make([]string, 0, len(c.Command)+len(c.Args))
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		out = append(out, ExpandEnv(a, env))
	}
	return out
}

// ContainerArgs returns the container's arguments as the kubelet passes
// them: $(VAR) expanded from the container's env (ExpandEnv).
func ContainerArgs(c *corev1.Container) []string {
	env := envOf(c)
	out := make([]string, 0, len(c.Args))
	for _, a := range c.Args {
		out = append(out, ExpandEnv(a, env))
	}
	return out
}

// envOf returns the container's env variables with a literal value, each
// expanded from those before it, as the kubelet does. Variables from
// valueFrom (Downward API, ConfigMaps, Secrets) are left out: their
// $(VAR) stays as written, and the tests set them on the process.
func envOf(c *corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = ExpandEnv(e.Value, env)
		}
	}
	return env
}

// ExpandEnv expands s as Kubernetes expands a container's command, args
// and env values: $(VAR) becomes the value of VAR when env defines it and
// stays as written otherwise; $$ is an escaped $ ($$(VAR) is the literal
// text $(VAR)); any other $ stays.
func ExpandEnv(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok && name != "" {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// Flag returns the value of --name=VALUE among the flags of args (before a
// "--"), and whether it is there.
func Flag(args []string, name string) (string, bool) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// LocalArgs adapts a container's elector arguments to a process on this
// machine: --http listens on a free loopback port, and extra flags (such
// as a shorter --ttl) are added before a "--" that starts a command.
func LocalArgs(args []string, extra ...string) []string {
	var flags, command []string
	if i := slices.Index(args, "--"); i >= 0 {
		flags, command = args[:i], args[i:]
	} else {
		flags = args
	}
	out := make([]string, 0, len(args)+len(extra)+1)
	http := false
	for _, a := range flags {
		if strings.HasPrefix(a, "--http=") {
			a, http = "--http=127.0.0.1:0", true
		}
		out = append(out, a)
	}
	if !http {
		out = append(out, "--http=127.0.0.1:0")
	}
	out = append(out, extra...)
	return append(out, command...)
}
