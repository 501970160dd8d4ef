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

package rbac

import (
	"reflect"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

func TestRuleString(t *testing.T) {
	tests := []struct {
		rule Rule
		want string
	}{
		{Rule{Group: CoordinationGroup, Resource: "leases", Verb: "update", Name: "my-lock"}, `update leases.coordination.k8s.io "my-lock"`},
		{Rule{Resource: "events", Verb: "create"}, `create events`},
		{Rule{Group: CoordinationGroup, Resource: "leases/status", Verb: "patch"}, `patch leases.coordination.k8s.io/status`},
		{Rule{Resource: "pods", Verb: "patch", Name: "web-0"}, `patch pods "web-0"`},
	}
	for _, tt := range tests {
		if got := tt.rule.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.rule, got, tt.want)
		}
	}
}

func TestSortVerbs(t *testing.T) {
	verbs := []string{"escalate", "patch", "bind", "get", "deletecollection", "watch", "create"}
	sortVerbs(verbs)
	want := []string{"get", "watch", "create", "patch", "deletecollection", "bind", "escalate"}
	if !reflect.DeepEqual(verbs, want) {
		t.Errorf("sortVerbs = %q, want %q", verbs, want)
	}
}

func concat(rs ...[]Rule) []Rule {
	var out []Rule
	for _, r := range rs {
		out = append(out, r...)
	}
	return out
}

func TestRole(t *testing.T) {
	tests := []struct {
		name      string
		namespace string
		roleName  string
		rules     []Rule
		want      string
		wantRules []rbacv1.PolicyRule
	}{
		{
			name:      "single lease with events and pod label",
			namespace: "team-a",
			roleName:  "elector",
			rules:     concat(LeaseRules("my-lock"), EventRules(), PodLabelRules()),
			want: `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: elector
  namespace: team-a
rules:
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "patch"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: ["my-lock"]
  verbs: ["get", "watch", "update"]
`,
			wantRules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
				{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "patch"}},
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{"my-lock"}, Verbs: []string{"get", "watch", "update"}},
			},
		},
		{
			name:      "two leases share resourceNames, input order and duplicates do not matter",
			namespace: "ns",
			roleName:  "elector",
			rules:     concat(LeaseRules("zeta"), LeaseRules("alpha"), LeaseRules("zeta")),
			want: `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: elector
  namespace: ns
rules:
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: ["alpha", "zeta"]
  verbs: ["get", "watch", "update"]
`,
			wantRules: []rbacv1.PolicyRule{
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{"alpha", "zeta"}, Verbs: []string{"get", "watch", "update"}},
			},
		},
		{
			name:      "shared rules make named lease rules redundant",
			namespace: "ns",
			roleName:  "elector-shared",
			rules:     concat(LeaseRules("my-lock"), SharedLeaseRules()),
			want: `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: elector-shared
  namespace: ns
rules:
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "list", "watch", "create", "update"]
`,
			wantRules: []rbacv1.PolicyRule{
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update"}},
			},
		},
		{
			name:      "different verbs per name stay apart, create loses its name, invalid rules dropped",
			namespace: "ns",
			roleName:  "r",
			rules: []Rule{
				{Group: CoordinationGroup, Resource: "leases", Verb: "update", Name: "b"},
				{Group: CoordinationGroup, Resource: "leases", Verb: "get", Name: "a"},
				{Group: CoordinationGroup, Resource: "leases", Verb: "update", Name: "a"},
				{Group: CoordinationGroup, Resource: "leases", Verb: "create", Name: "a"},
				{Group: CoordinationGroup, Resource: "leases", Verb: ""},
				{Group: CoordinationGroup, Resource: "", Verb: "get"},
			},
			want: `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: r
  namespace: ns
rules:
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: ["a"]
  verbs: ["get", "update"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: ["b"]
  verbs: ["update"]
`,
			wantRules: []rbacv1.PolicyRule{
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{"a"}, Verbs: []string{"get", "update"}},
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{"b"}, Verbs: []string{"update"}},
			},
		},
		{
			name:      "names YAML would misread are quoted",
			namespace: "123",
			roleName:  "true",
			rules:     []Rule{{Group: CoordinationGroup, Resource: "leases", Verb: "get", Name: "on"}},
			want: `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: "true"
  namespace: "123"
rules:
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: ["on"]
  verbs: ["get"]
`,
			wantRules: []rbacv1.PolicyRule{
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{"on"}, Verbs: []string{"get"}},
			},
		},
		{
			name:      "no rules",
			namespace: "ns",
			roleName:  "empty",
			rules:     nil,
			want: `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: empty
  namespace: ns
rules: []
`,
			wantRules: []rbacv1.PolicyRule{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Role(tt.namespace, tt.roleName, tt.rules)
			if got != tt.want {
				t.Errorf("Role() =\n%s\nwant\n%s", got, tt.want)
			}
			var role rbacv1.Role
			if err := yaml.UnmarshalStrict([]byte(got), &role); err != nil {
				t.Fatalf("unable to parse Role YAML: %v\n%s", err, got)
			}
			if role.APIVersion != "rbac.authorization.k8s.io/v1" || role.Kind != "Role" {
				t.Errorf("TypeMeta = %+v", role.TypeMeta)
			}
			if role.Name != tt.roleName || role.Namespace != tt.namespace {
				t.Errorf("metadata = %q/%q, want %q/%q", role.Namespace, role.Name, tt.namespace, tt.roleName)
			}
			if !reflect.DeepEqual(role.Rules, tt.wantRules) {
				t.Errorf("parsed rules = %#v\nwant %#v", role.Rules, tt.wantRules)
			}
		})
	}
}

func TestRoleBinding(t *testing.T) {
	tests := []struct {
		name        string
		namespace   string
		subject     Subject
		want        string
		wantSubject rbacv1.Subject
	}{
		{
			name:      "service account in another namespace",
			namespace: "team-a",
			subject:   Subject{Kind: KindServiceAccount, Namespace: "infra", Name: "elector"},
			want: `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: elector
  namespace: team-a
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: elector
subjects:
- kind: ServiceAccount
  name: elector
  namespace: infra
`,
			wantSubject: rbacv1.Subject{Kind: "ServiceAccount", Name: "elector", Namespace: "infra"},
		},
		{
			name:      "service account without namespace defaults to the binding's",
			namespace: "team-a",
			subject:   Subject{Kind: KindServiceAccount, Name: "default"},
			want: `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: elector
  namespace: team-a
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: elector
subjects:
- kind: ServiceAccount
  name: default
  namespace: team-a
`,
			wantSubject: rbacv1.Subject{Kind: "ServiceAccount", Name: "default", Namespace: "team-a"},
		},
		{
			name:      "user with characters YAML needs quoted",
			namespace: "team-a",
			subject:   SubjectFromUsername("oidc:alice@example.com"),
			want: `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: elector
  namespace: team-a
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: elector
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: "oidc:alice@example.com"
`,
			wantSubject: rbacv1.Subject{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "oidc:alice@example.com"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RoleBinding(tt.namespace, "elector", tt.subject)
			if got != tt.want {
				t.Errorf("RoleBinding() =\n%s\nwant\n%s", got, tt.want)
			}
			var rb rbacv1.RoleBinding
			if err := yaml.UnmarshalStrict([]byte(got), &rb); err != nil {
				t.Fatalf("unable to parse RoleBinding YAML: %v\n%s", err, got)
			}
			if rb.Kind != "RoleBinding" || rb.Name != "elector" || rb.Namespace != tt.namespace {
				t.Errorf("parsed %s %s/%s", rb.Kind, rb.Namespace, rb.Name)
			}
			wantRef := rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "elector"}
			if rb.RoleRef != wantRef {
				t.Errorf("roleRef = %+v, want %+v", rb.RoleRef, wantRef)
			}
			if len(rb.Subjects) != 1 || rb.Subjects[0] != tt.wantSubject {
				t.Errorf("subjects = %+v, want [%+v]", rb.Subjects, tt.wantSubject)
			}
		})
	}
}

func TestSubjectFromUsername(t *testing.T) {
	tests := []struct {
		username string
		want     Subject
		str      string
	}{
		{"system:serviceaccount:team-a:elector", Subject{Kind: KindServiceAccount, Namespace: "team-a", Name: "elector"}, `ServiceAccount "team-a/elector"`},
		{"alice", Subject{Kind: KindUser, Name: "alice"}, `User "alice"`},
		{"oidc:alice@example.com", Subject{Kind: KindUser, Name: "oidc:alice@example.com"}, `User "oidc:alice@example.com"`},
		{"system:serviceaccount:team-a", Subject{Kind: KindUser, Name: "system:serviceaccount:team-a"}, `User "system:serviceaccount:team-a"`},
		{"system:serviceaccount::elector", Subject{Kind: KindUser, Name: "system:serviceaccount::elector"}, `User "system:serviceaccount::elector"`},
		{"system:serviceaccount:ns:", Subject{Kind: KindUser, Name: "system:serviceaccount:ns:"}, `User "system:serviceaccount:ns:"`},
		{"system:serviceaccount:ns:a:b", Subject{Kind: KindUser, Name: "system:serviceaccount:ns:a:b"}, `User "system:serviceaccount:ns:a:b"`},
		{"system:serviceaccounts:ns", Subject{Kind: KindUser, Name: "system:serviceaccounts:ns"}, `User "system:serviceaccounts:ns"`},
		{"", Subject{}, "the caller (identity unknown)"},
	}
	for _, tt := range tests {
		got := SubjectFromUsername(tt.username)
		if got != tt.want {
			t.Errorf("SubjectFromUsername(%q) = %+v, want %+v", tt.username, got, tt.want)
		}
		if got.Username() != tt.username {
			t.Errorf("SubjectFromUsername(%q).Username() = %q", tt.username, got.Username())
		}
		if got.String() != tt.str {
			t.Errorf("SubjectFromUsername(%q).String() = %q, want %q", tt.username, got.String(), tt.str)
		}
	}
}
