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
	"strings"
	"testing"

	"github.com/elector-dev/elector/internal/rbac"
)

func TestSidecarNeeds(t *testing.T) {
	sa := rbac.SubjectFromUsername("system:serviceaccount:apps:runner")
	var got []string
	for _, c := range sidecarNeeds("team-a", "l", sa, true, true) {
		got = append(got, c.Namespace+": "+c.Rule.String())
	}
	want := []string{
		`team-a: create leases.coordination.k8s.io "l"`,
		`team-a: get leases.coordination.k8s.io "l"`,
		`team-a: watch leases.coordination.k8s.io "l"`,
		`team-a: update leases.coordination.k8s.io "l"`,
		`team-a: create events`,
		`apps: list pods`,
		`apps: patch pods`,
	}
	// create is reviewed without a name (RBAC cannot limit it by name).
	want[0] = `team-a: create leases.coordination.k8s.io`
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("sidecarNeeds() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(sidecarNeeds("team-a", "l", sa, false, false)); n != 4 {
		t.Errorf("without events and labels: %d rules, want the 4 Lease rules", n)
	}
}

func TestGroupsOf(t *testing.T) {
	got := groupsOf(rbac.SubjectFromUsername("system:serviceaccount:team-a:app"))
	want := "system:serviceaccounts,system:serviceaccounts:team-a,system:authenticated"
	if strings.Join(got, ",") != want {
		t.Errorf("groupsOf(SA) = %v", got)
	}
	if got := groupsOf(rbac.SubjectFromUsername("alice")); strings.Join(got, ",") != "system:authenticated" {
		t.Errorf("groupsOf(user) = %v", got)
	}
}

func TestRenderWhy(t *testing.T) {
	sa := rbac.SubjectFromUsername("system:serviceaccount:team-a:app")
	checks := sidecarNeeds("team-a", "l", sa, true, false)
	for i := range checks {
		checks[i].Allowed = checks[i].Rule.Verb != "update"
		if checks[i].Allowed {
			checks[i].Reason = `RBAC: allowed by RoleBinding "app/team-a" of Role "app" to ServiceAccount "app/team-a"`
		}
	}
	out, complete := renderWhy("team-a", "l", sa, groupsOf(sa), checks)
	if complete {
		t.Error("complete with update denied")
	}
	for _, want := range []string{
		"Can ServiceAccount team-a/app run elector for Lease team-a/l?",
		"LocalSubjectAccessReviews as system:serviceaccount:team-a:app, groups system:serviceaccounts, system:serviceaccounts:team-a, system:authenticated:",
		`  NO       team-a     update leases.coordination.k8s.io "l"  <none>`,
		`  yes      team-a     create leases.coordination.k8s.io      RBAC: allowed by RoleBinding`,
		"kind: Role\nmetadata:\n  name: elector-l\n  namespace: team-a\nrules:\n- apiGroups: [\"coordination.k8s.io\"]\n  resources: [\"leases\"]\n  resourceNames: [\"l\"]\n  verbs: [\"update\"]\n",
		"subjects:\n- kind: ServiceAccount\n  name: app\n  namespace: team-a\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("renderWhy() =\n%s\nwant it to contain\n%s", out, want)
		}
	}
	for i := range checks {
		checks[i].Allowed = true
	}
	out, complete = renderWhy("team-a", "l", sa, groupsOf(sa), checks)
	if !complete || !strings.Contains(out, "Yes: ServiceAccount team-a/app has every permission the elector sidecar needs for this Lease.") {
		t.Errorf("all allowed: complete=%t\n%s", complete, out)
	}
}
