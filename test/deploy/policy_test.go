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
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// policyName is the ValidatingAdmissionPolicy of
// deploy/cluster/leader-label-policy; its messages name it.
const policyName = "elector-leader-label"

// TestLeaderLabelPolicy applies deploy/cluster/leader-label-policy and
// checks, as an elector ServiceAccount that holds components/leader-label's
// grant (patch on every Pod), that moving the leader label is admitted and
// every other change to a Pod is denied with the policy's message; and
// that another ServiceAccount with the same grant is not affected.
func TestLeaderLabelPolicy(t *testing.T) {
	ns := namespace(t)
	// deploy/base with the leader-label component, under a namePrefix as a
	// user running two elections in one namespace would write it.
	a := newApplier(t)
	if err := a.create(ctx(t), render(t, overlay(t, "payments-", "components/leader-label")), ns, false); err != nil {
		t.Fatal(err)
	}
	elector := saClient(t, ns, "payments-elector")
	// Another ServiceAccount with the same grant, not elector's.
	other := saClient(t, ns, "deployer")
	grantPodPatch(t, ns, "deployer")

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app-0", Labels: map[string]string{"app": "payments"}},
		Spec: corev1.PodSpec{
			// No controller manager creates "default" here.
			ServiceAccountName:           "deployer",
			AutomountServiceAccountToken: new(false),
			Containers:                   []corev1.Container{{Name: "app", Image: "registry.example.com/app:1"}},
		},
	}
	if _, err := admin(t).CoreV1().Pods(ns).Create(ctx(t), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	install(t, "cluster/leader-label-policy")

	image := `{"spec":{"containers":[{"name":"app","image":"registry.example.com/evil:1"}]}}`
	// The API server takes the new policy up within a second or so, and
	// RBAC the new Role: until then a dry run is admitted or denied by RBAC.
	waitForDenial(t, elector, ns, "app-0", image)

	for _, c := range []struct {
		name, patch string
		denied      string // a part of the policy's message; "" = admitted
	}{
		{"moves the leader label onto the Pod", `{"metadata":{"labels":{"elector.dev/leader":"payments"}}}`, ""},
		{"changes the leader label's value", `{"metadata":{"labels":{"elector.dev/leader":"orders"}}}`, ""},
		{"removes the leader label", `{"metadata":{"labels":{"elector.dev/leader":null}}}`, ""},
		{"changes an image", image, "changes its spec"},
		{"changes another label", `{"metadata":{"labels":{"app":"evil"}}}`, "changes another label"},
		{"adds another label beside the leader label", `{"metadata":{"labels":{"elector.dev/leader":"payments","tier":"x"}}}`, "changes another label"},
		{"removes another label", `{"metadata":{"labels":{"app":null}}}`, "changes another label"},
		{"adds an annotation", `{"metadata":{"annotations":{"a":"b"}}}`, "changes its annotations"},
		{"changes the spec", `{"spec":{"activeDeadlineSeconds":5}}`, "changes its spec"},
		{"adds a finalizer", `{"metadata":{"finalizers":["example.com/keep"]}}`, "finalizers"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := elector.CoreV1().Pods(ns).Patch(ctx(t), "app-0", types.MergePatchType, []byte(c.patch), metav1.PatchOptions{})
			switch {
			case c.denied == "" && err != nil:
				t.Fatalf("as %s: %v, want admitted", ns+"/payments-elector", err)
			case c.denied != "" && err == nil:
				t.Fatalf("as %s: admitted, want denied by %s (%s)", ns+"/payments-elector", policyName, c.denied)
			case c.denied != "" && (!apierrors.IsForbidden(err) || !strings.Contains(err.Error(), policyName) || !strings.Contains(err.Error(), c.denied)):
				t.Fatalf("as %s: %v, want Forbidden by %s saying %q", ns+"/payments-elector", err, policyName, c.denied)
			}
		})
	}
	got, err := admin(t).CoreV1().Pods(ns).Get(ctx(t), "app-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := got.Spec.Containers[0].Image; img != "registry.example.com/app:1" || got.Labels["app"] != "payments" || len(got.Annotations) > 0 {
		t.Errorf("the Pod changed: image %s, labels %v, annotations %v", img, got.Labels, got.Annotations)
	}

	// Not elector's ServiceAccount: the same grant, no policy. (Its Role
	// may take a moment to be in effect.)
	if err := waitUntil(ctx(t), func(c context.Context) (bool, error) {
		_, err := other.CoreV1().Pods(ns).Patch(c, "app-0", types.MergePatchType, []byte(image), metav1.PatchOptions{})
		if apierrors.IsForbidden(err) && !strings.Contains(err.Error(), policyName) {
			return false, nil // RBAC, not yet in effect
		}
		return err == nil, err
	}); err != nil {
		t.Fatalf("as %s/deployer, changing the image: %v, want admitted (the policy is for elector's ServiceAccounts only)", ns, err)
	}
}

// waitForDenial waits until a dry run of patch by c is denied by the
// policy.
func waitForDenial(t *testing.T, c kubernetes.Interface, ns, pod, patch string) {
	t.Helper()
	var last error
	err := waitUntil(ctx(t), func(cx context.Context) (bool, error) {
		_, last = c.CoreV1().Pods(ns).Patch(cx, pod, types.MergePatchType, []byte(patch), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		return last != nil && strings.Contains(last.Error(), policyName), nil
	})
	if err != nil {
		t.Fatalf("the policy %s did not deny a dry run within %s: last answer %v", policyName, guard, last)
	}
}

// saClient is a client authenticated as ServiceAccount ns/name (created if
// missing).
func saClient(t *testing.T, ns, name string) kubernetes.Interface {
	t.Helper()
	cfg, err := cp.ServiceAccountConfig(ctx(t), ns, name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// grantPodPatch grants ServiceAccount ns/sa what components/leader-label
// grants: list and patch on pods.
func grantPodPatch(t *testing.T, ns, sa string) {
	t.Helper()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: sa},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "patch"}}},
	}
	if _, err := admin(t).RbacV1().Roles(ns).Create(ctx(t), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: sa},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: sa},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}},
	}
	if _, err := admin(t).RbacV1().RoleBindings(ns).Create(ctx(t), rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitUntil polls cond until it returns true, an error, or ctx ends.
func waitUntil(ctx context.Context, cond func(context.Context) (bool, error)) error {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		ok, err := cond(ctx)
		if ok || (err != nil && ctx.Err() == nil && !apierrors.IsForbidden(err)) {
			return err
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}
