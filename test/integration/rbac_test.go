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

package integration

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestLeaseRBAC checks that the control plane enforces RBAC for a
// ServiceAccount: a candidate may read a Lease only once a Role grants it, and
// only the Lease that the Role names.
func TestLeaseRBAC(t *testing.T) {
	const (
		namespace = "integration"
		account   = "candidate"
		lease     = "elector-rbac"
		other     = "elector-rbac-other"
		role      = "lease-reader"
	)
	ctx := t.Context()
	admin := newClient(t, cp.AdminConfig())
	saConfig, err := cp.ServiceAccountConfig(ctx, namespace, account)
	if err != nil {
		t.Fatal(err)
	}
	candidate := newClient(t, saConfig)

	for _, name := range []string{lease, other} {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if _, err := admin.CoordinationV1().Leases(namespace).Create(ctx, l, metav1.CreateOptions{}); err != nil {
			t.Fatalf("unable to create Lease %s as admin: %v", name, err)
		}
		t.Cleanup(func() {
			_ = admin.CoordinationV1().Leases(namespace).Delete(context.Background(), name, metav1.DeleteOptions{})
		})
	}

	_, err = candidate.CoordinationV1().Leases(namespace).Get(ctx, lease, metav1.GetOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("Get Lease as %s/%s before any grant: got error %v, want Forbidden", namespace, account, err)
	}

	r := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		Rules: []rbacv1.PolicyRule{{
			APIGroups:     []string{coordinationv1.GroupName},
			Resources:     []string{"leases"},
			Verbs:         []string{"get"},
			ResourceNames: []string{lease},
		}},
	}
	if _, err := admin.RbacV1().Roles(namespace).Create(ctx, r, metav1.CreateOptions{}); err != nil {
		t.Fatalf("unable to create Role: %v", err)
	}
	t.Cleanup(func() {
		_ = admin.RbacV1().Roles(namespace).Delete(context.Background(), role, metav1.DeleteOptions{})
	})
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: account, Namespace: namespace}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role},
	}
	if _, err := admin.RbacV1().RoleBindings(namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("unable to create RoleBinding: %v", err)
	}
	t.Cleanup(func() {
		_ = admin.RbacV1().RoleBindings(namespace).Delete(context.Background(), role, metav1.DeleteOptions{})
	})

	// The RBAC authorizer serves from an informer cache: the grant takes
	// effect shortly after it is written, not at once.
	var lastErr error
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		_, lastErr = candidate.CoordinationV1().Leases(namespace).Get(ctx, lease, metav1.GetOptions{})
		switch {
		case lastErr == nil:
			return true, nil
		case apierrors.IsForbidden(lastErr):
			return false, nil
		default:
			return false, lastErr
		}
	})
	if err != nil {
		t.Fatalf("Get Lease as %s/%s after the grant: %v (last error: %v)", namespace, account, err, lastErr)
	}

	_, err = candidate.CoordinationV1().Leases(namespace).Get(ctx, other, metav1.GetOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("Get Lease %s, not named by the Role: got error %v, want Forbidden", other, err)
	}
	if _, err := candidate.CoordinationV1().Leases(namespace).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("List Leases, not granted: got error %v, want Forbidden", err)
	}
}
