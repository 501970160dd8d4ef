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
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

// exitForbidden is elector's exit code for missing RBAC permissions
// (elector -h).
const exitForbidden = 4

// TestNoRoleIsExplained reproduces the seed's failure: a ServiceAccount
// that nobody granted anything. elector must refuse to start with one
// clear message naming the ServiceAccount, the namespace and every missing
// permission, and print the namespaced Role that fixes it; applying that
// Role must fix it, and it must be the Role deploy/base ships.
func TestNoRoleIsExplained(t *testing.T) {
	// Most of its time is the sidecar's 15s of re-checks before it exits.
	t.Parallel() // own namespace, processes and files: see main_test.go
	m := render(t, "base")
	lease := election(t, m)
	bare := *m
	bare.Role, bare.RoleBinding = nil, nil
	n := setup(t, &bare)

	r := start(t, n, "replica-a", baseArgs(t, m)...)
	if code := exitCode(t, r); code != exitForbidden {
		t.Fatalf("exit code %d, want %d (forbidden); output:\n%s", code, exitForbidden, r.Output())
	}
	stderr := r.Stderr()
	t.Logf("stderr:\n%s", stderr)
	want := []string{
		"ServiceAccount " + n.Name + "/" + n.ServiceAccount,
		"namespace " + n.Name,
		"kind: Role\n",
		"kind: RoleBinding\n",
	}
	for _, rule := range sidecar.Rules(m.Role) {
		want = append(want, rule.String())
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr does not name %q", w)
		}
	}
	checkNoClusterAdmin(t, stderr)
	if !strings.Contains(stderr, fmt.Sprintf("%q", lease)) {
		t.Errorf("stderr does not name the Lease %q", lease)
	}

	// The printed Role grants exactly what deploy/base grants.
	role, binding := printedFix(t, stderr)
	got, wantRules := sidecar.Rules(role), sidecar.Rules(m.Role)
	if !sameRules(got, wantRules) {
		t.Errorf("the printed Role grants %v; deploy/base grants %v", got, wantRules)
	}

	// Applying the printed fix is enough.
	c := ctx(t)
	if _, err := n.Admin.RbacV1().Roles(n.Name).Create(c, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Admin.RbacV1().RoleBindings(n.Name).Create(c, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitForAccess(c, got, nil); err != nil {
		t.Fatal(err)
	}
	fixed := start(t, n, "replica-b", baseArgs(t, m)...)
	if _, err := sidecar.WaitUntilLeads(c, watch(t, fixed)); err != nil {
		t.Fatalf("elector does not lead with the printed Role: %v\n%s", err, fixed.Output())
	}
}

// TestEachRuleOfTheDeployRoleIsNeeded removes each permission of the
// example's Role (deploy/base plus the leader-label component) in turn: the
// sidecar, run with the example's flags, must refuse to start and name
// exactly that permission. So the Role grants nothing the sidecar does not
// use, and the start-up check misses nothing the Role grants.
//
// Each sidecar re-checks a missing permission for 15s before it exits
// (ExitForbidden), so the subtests run in parallel, each in its own
// namespace with its own ServiceAccount, Role and process.
func TestEachRuleOfTheDeployRoleIsNeeded(t *testing.T) {
	t.Parallel() // own namespace, processes and files: see main_test.go
	m := render(t, "examples/nginx")
	container, err := m.ElectorContainer()
	if err != nil {
		t.Fatal(err)
	}
	args := sidecar.LocalArgs(sidecar.ContainerArgs(container), "--ttl="+ttl.String())
	all := sidecar.Rules(m.Role)
	if len(all) < 7 {
		t.Fatalf("the example's Role grants only %v", all)
	}
	for i, removed := range all {
		t.Run(removed.String(), func(t *testing.T) {
			t.Parallel()
			n := setup(t, m) // its own namespace: the subtests change the Role
			rest := slices.Delete(slices.Clone(all), i, i+1)
			if err := n.SetRole(ctx(t), m.Role.Name, rest, []rbac.Rule{removed}); err != nil {
				t.Fatal(err)
			}
			r := start(t, n, fmt.Sprintf("pod-%d", i), args...)
			select {
			case <-r.Done():
			case <-campaigns(t, r):
				t.Fatalf("elector started without %s: the Role grants more than the sidecar needs\n%s", removed, r.Output())
			}
			if code := r.ExitCode(); code != exitForbidden {
				t.Fatalf("exit code %d, want %d; output:\n%s", code, exitForbidden, r.Output())
			}
			stderr := r.Stderr()
			summary := fmt.Sprintf("elector: ServiceAccount %s/%s lacks 1 permission in namespace %s: %s",
				n.Name, n.ServiceAccount, n.Name, removed)
			lines := strings.Split(stderr, "\n")
			if !slices.Contains(lines, summary) {
				t.Errorf("stderr has no line\n  %s\n%s", summary, stderr)
			}
			if c := len(slices.DeleteFunc(lines, func(l string) bool {
				return !strings.HasPrefix(l, "elector: ") || !strings.Contains(l, " lacks ")
			})); c != 1 {
				t.Errorf("stderr has %d summary lines, want 1:\n%s", c, stderr)
			}
			checkNoClusterAdmin(t, stderr)
			role, _ := printedFix(t, stderr)
			if got := sidecar.Rules(role); !sameRules(got, []rbac.Rule{removed}) {
				t.Errorf("the printed Role grants %v, want exactly %v", got, removed)
			}
		})
	}
}

// campaigns is closed once the replica campaigns, which it does only
// after the permission check passed. (It serves HTTP before that.)
func campaigns(t *testing.T, r *sidecar.Replica) <-chan struct{} {
	ch := make(chan struct{})
	c := ctx(t)
	go func() {
		for c.Err() == nil {
			if strings.Contains(r.Stderr(), "msg=Campaigning") {
				close(ch)
				return
			}
			select {
			case <-c.Done():
			case <-r.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return ch
}

func checkNoClusterAdmin(t *testing.T, s string) {
	t.Helper()
	for _, bad := range []string{"cluster-admin", "ClusterRole", "clusterrole"} {
		if strings.Contains(s, bad) {
			t.Errorf("the message suggests %q:\n%s", bad, s)
		}
	}
}

// printedFix parses the Role and RoleBinding elector printed.
func printedFix(t *testing.T, stderr string) (*rbacv1.Role, *rbacv1.RoleBinding) {
	t.Helper()
	start := strings.Index(stderr, "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n")
	end := strings.Index(stderr, "\nOr with kubectl")
	if start < 0 || end < start {
		t.Fatalf("no Role printed:\n%s", stderr)
	}
	docs := strings.Split(stderr[start:end], "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("want a Role and a RoleBinding, got %d documents:\n%s", len(docs), stderr[start:end])
	}
	var role rbacv1.Role
	var binding rbacv1.RoleBinding
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &role); err != nil || role.Kind != "Role" {
		t.Fatalf("unable to parse the printed Role (%v):\n%s", err, docs[0])
	}
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &binding); err != nil || binding.Kind != "RoleBinding" {
		t.Fatalf("unable to parse the printed RoleBinding (%v):\n%s", err, docs[1])
	}
	return &role, &binding
}

func sameRules(a, b []rbac.Rule) bool {
	key := func(r rbac.Rule) string { return r.String() }
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i, r := range a {
		ka[i] = key(r)
	}
	for i, r := range b {
		kb[i] = key(r)
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(slices.Compact(ka), slices.Compact(kb))
}
