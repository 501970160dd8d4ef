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
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	tests := []struct {
		name     string
		subject  Subject
		missing  []Rule
		roleName string
		want     string
	}{
		{
			name:     "service account missing everything",
			subject:  SubjectFromUsername("system:serviceaccount:team-a:elector"),
			missing:  concat(LeaseRules("my-lock"), EventRules(), PodLabelRules()),
			roleName: "elector",
			want: `ServiceAccount "team-a/elector" lacks these permissions in namespace "team-a":
  - create leases.coordination.k8s.io
  - get leases.coordination.k8s.io "my-lock"
  - watch leases.coordination.k8s.io "my-lock"
  - update leases.coordination.k8s.io "my-lock"
  - create events
  - patch events
  - list pods
  - patch pods

Grant exactly these, and nothing cluster-wide, with this namespaced Role and
RoleBinding (kubectl apply -f -):

apiVersion: rbac.authorization.k8s.io/v1
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
---
apiVersion: rbac.authorization.k8s.io/v1
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
  namespace: team-a

Or with kubectl, which gives all resources of a role the same verbs and names,
as 4 Roles that together grant the same:

  kubectl create role elector-1 --namespace=team-a --verb=create --verb=patch --resource=events
  kubectl create rolebinding elector-1 --namespace=team-a --role=elector-1 --serviceaccount=team-a:elector
  kubectl create role elector-2 --namespace=team-a --verb=list --verb=patch --resource=pods
  kubectl create rolebinding elector-2 --namespace=team-a --role=elector-2 --serviceaccount=team-a:elector
  kubectl create role elector-3 --namespace=team-a --verb=create --resource=leases.coordination.k8s.io
  kubectl create rolebinding elector-3 --namespace=team-a --role=elector-3 --serviceaccount=team-a:elector
  kubectl create role elector-4 --namespace=team-a --verb=get --verb=watch --verb=update --resource=leases.coordination.k8s.io --resource-name=my-lock
  kubectl create rolebinding elector-4 --namespace=team-a --role=elector-4 --serviceaccount=team-a:elector
`,
		},
		{
			name:     "user missing one named update, from a 403",
			subject:  SubjectFromUsername("alice example"),
			missing:  []Rule{{Group: CoordinationGroup, Resource: "leases", Verb: "update", Name: "my-lock"}},
			roleName: "elector",
			want: `User "alice example" lacks these permissions in namespace "team-a":
  - update leases.coordination.k8s.io "my-lock"

Grant exactly these, and nothing cluster-wide, with this namespaced Role and
RoleBinding (kubectl apply -f -):

apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: elector
  namespace: team-a
rules:
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: ["my-lock"]
  verbs: ["update"]
---
apiVersion: rbac.authorization.k8s.io/v1
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
  name: "alice example"

Or with kubectl:

  kubectl create role elector --namespace=team-a --verb=update --resource=leases.coordination.k8s.io --resource-name=my-lock
  kubectl create rolebinding elector --namespace=team-a --role=elector --user='alice example'
`,
		},
		{
			name:     "unknown identity gets no binding",
			subject:  Subject{},
			missing:  EventRules(),
			roleName: "elector-events",
			want: `The caller (identity unknown) lacks these permissions in namespace "team-a":
  - create events
  - patch events

Grant exactly these, and nothing cluster-wide, with this namespaced Role, bound
with a RoleBinding to the identity elector runs as (see kubectl auth whoami):

apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: elector-events
  namespace: team-a
rules:
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]

Or with kubectl:

  kubectl create role elector-events --namespace=team-a --verb=create --verb=patch --resource=events
`,
		},
		{
			name:     "resources sharing verbs share one kubectl role",
			subject:  Subject{Kind: KindServiceAccount, Namespace: "infra", Name: "elector"},
			missing:  []Rule{{Resource: "pods", Verb: "patch"}, {Resource: "events", Verb: "patch"}, {Group: CoordinationGroup, Resource: "leases", Verb: "patch"}},
			roleName: "r",
			want: `ServiceAccount "infra/elector" lacks these permissions in namespace "team-a":
  - patch pods
  - patch events
  - patch leases.coordination.k8s.io

Grant exactly these, and nothing cluster-wide, with this namespaced Role and
RoleBinding (kubectl apply -f -):

apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: r
  namespace: team-a
rules:
- apiGroups: [""]
  resources: ["events"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["patch"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: r
  namespace: team-a
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: r
subjects:
- kind: ServiceAccount
  name: elector
  namespace: infra

Or with kubectl:

  kubectl create role r --namespace=team-a --verb=patch --resource=events --resource=pods --resource=leases.coordination.k8s.io
  kubectl create rolebinding r --namespace=team-a --role=r --serviceaccount=infra:elector
`,
		},
		{
			name:     "nothing missing",
			subject:  SubjectFromUsername("alice"),
			missing:  nil,
			roleName: "elector",
			want:     "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Explain("team-a", tt.subject, tt.missing, tt.roleName)
			if got != tt.want {
				t.Errorf("Explain() =\n%s\nwant\n%s", got, tt.want)
			}
			for _, bad := range []string{"cluster-admin", "ClusterRole", `"*"`} {
				if strings.Contains(got, bad) {
					t.Errorf("Explain() suggests %s", bad)
				}
			}
		})
	}
}
