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
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestParseForbidden(t *testing.T) {
	leases := schema.GroupResource{Group: CoordinationGroup, Resource: "leases"}
	tests := []struct {
		name   string
		err    error
		want   Forbidden
		wantOK bool
	}{
		{
			name: "exact API server message without details",
			err: &apierrors.StatusError{ErrStatus: metav1.Status{
				Status: metav1.StatusFailure, Code: 403, Reason: metav1.StatusReasonForbidden,
				Message: `leases.coordination.k8s.io "x" is forbidden: User "system:serviceaccount:ns:sa" cannot get resource "leases" in API group "coordination.k8s.io" in the namespace "ns"`,
			}},
			want: Forbidden{
				Verb: "get", Group: CoordinationGroup, Resource: "leases", Namespace: "ns", Name: "x", User: "system:serviceaccount:ns:sa",
				Message: `leases.coordination.k8s.io "x" is forbidden: User "system:serviceaccount:ns:sa" cannot get resource "leases" in API group "coordination.k8s.io" in the namespace "ns"`,
			},
			wantOK: true,
		},
		{
			name: "NewForbidden for a named update",
			err:  apierrors.NewForbidden(leases, "my-lock", errors.New(`User "system:serviceaccount:team-a:elector" cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "team-a"`)),
			want: Forbidden{
				Verb: "update", Group: CoordinationGroup, Resource: "leases", Namespace: "team-a", Name: "my-lock", User: "system:serviceaccount:team-a:elector",
				Message: `leases.coordination.k8s.io "my-lock" is forbidden: User "system:serviceaccount:team-a:elector" cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "team-a"`,
			},
			wantOK: true,
		},
		{
			name: "create in the core group, wrapped, with an RBAC reason",
			err: fmt.Errorf("unable to record event: %w", apierrors.NewForbidden(schema.GroupResource{Resource: "events"}, "",
				errors.New(`User "alice" cannot create resource "events" in API group "" in the namespace "default": RBAC: role.rbac.authorization.k8s.io "x" not found`))),
			want: Forbidden{
				Verb: "create", Group: "", Resource: "events", Namespace: "default", User: "alice",
				Message: `events is forbidden: User "alice" cannot create resource "events" in API group "" in the namespace "default": RBAC: role.rbac.authorization.k8s.io "x" not found`,
			},
			wantOK: true,
		},
		{
			name: "subresource comes from the message, details only carry the resource",
			err:  apierrors.NewForbidden(leases, "l", errors.New(`User "bob" cannot patch resource "leases/status" in API group "coordination.k8s.io" in the namespace "n"`)),
			want: Forbidden{
				Verb: "patch", Group: CoordinationGroup, Resource: "leases/status", Namespace: "n", Name: "l", User: "bob",
				Message: `leases.coordination.k8s.io "l" is forbidden: User "bob" cannot patch resource "leases/status" in API group "coordination.k8s.io" in the namespace "n"`,
			},
			wantOK: true,
		},
		{
			name: "cluster scope list",
			err:  apierrors.NewForbidden(leases, "", errors.New(`User "bob" cannot list resource "leases" in API group "coordination.k8s.io" at the cluster scope`)),
			want: Forbidden{
				Verb: "list", Group: CoordinationGroup, Resource: "leases", User: "bob",
				Message: `leases.coordination.k8s.io is forbidden: User "bob" cannot list resource "leases" in API group "coordination.k8s.io" at the cluster scope`,
			},
			wantOK: true,
		},
		{
			name: "HTML-sanitized and escaped user name",
			err:  apierrors.NewForbidden(leases, "", errors.New(`User "a&lt;b&gt;&amp;\"c\"" cannot watch resource "leases" in API group "coordination.k8s.io" in the namespace "n"`)),
			want: Forbidden{
				Verb: "watch", Group: CoordinationGroup, Resource: "leases", Namespace: "n", User: `a<b>&"c"`,
				Message: `leases.coordination.k8s.io is forbidden: User "a&lt;b&gt;&amp;\"c\"" cannot watch resource "leases" in API group "coordination.k8s.io" in the namespace "n"`,
			},
			wantOK: true,
		},
		{
			name: "non-resource path",
			err:  apierrors.NewForbidden(schema.GroupResource{}, "", errors.New(`User "system:anonymous" cannot get path "/healthz"`)),
			want: Forbidden{
				Verb: "get", User: "system:anonymous",
				Message: `forbidden: User "system:anonymous" cannot get path "/healthz"`,
			},
			wantOK: true,
		},
		{
			name: "admission 403 names no verb or user",
			err:  apierrors.NewForbidden(leases, "x", errors.New("unable to create new content in namespace ns because it is being terminated")),
			want: Forbidden{
				Group: CoordinationGroup, Resource: "leases", Name: "x",
				Message: `leases.coordination.k8s.io "x" is forbidden: unable to create new content in namespace ns because it is being terminated`,
			},
			wantOK: true,
		},
		{name: "not found", err: apierrors.NewNotFound(leases, "x"), wantOK: false},
		{name: "unauthorized", err: apierrors.NewUnauthorized("who are you"), wantOK: false},
		{name: "plain error mentioning forbidden", err: errors.New(`leases.coordination.k8s.io "x" is forbidden: User "u" cannot get resource "leases" in API group "coordination.k8s.io"`), wantOK: false},
		{name: "nil", err: nil, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseForbidden(tt.err)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if got != tt.want {
				t.Errorf("ParseForbidden() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestForbiddenRuleAndSubject(t *testing.T) {
	err := apierrors.NewForbidden(schema.GroupResource{Group: CoordinationGroup, Resource: "leases"}, "my-lock",
		errors.New(`User "system:serviceaccount:team-a:elector" cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "team-a"`))
	f, ok := ParseForbidden(err)
	if !ok {
		t.Fatal("not recognized as 403")
	}
	wantRule := Rule{Group: CoordinationGroup, Resource: "leases", Verb: "update", Name: "my-lock"}
	if f.Rule() != wantRule {
		t.Errorf("Rule() = %+v, want %+v", f.Rule(), wantRule)
	}
	wantSubject := Subject{Kind: KindServiceAccount, Namespace: "team-a", Name: "elector"}
	if f.Subject() != wantSubject {
		t.Errorf("Subject() = %+v, want %+v", f.Subject(), wantSubject)
	}
}
