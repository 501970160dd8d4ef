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
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/test/controlplane"
)

// pollInterval paces the waits of this package.
const pollInterval = 25 * time.Millisecond

// Namespace is a namespace set up from Manifests: its ServiceAccount holds
// the manifests' Role, and Kubeconfig authenticates as that ServiceAccount.
type Namespace struct {
	Name           string
	ServiceAccount string
	// Kubeconfig is a file with a token of the ServiceAccount, the
	// credentials a Pod of the ServiceAccount would have.
	Kubeconfig string
	Admin      kubernetes.Interface
}

// Apply creates namespace ns and in it, as the admin, the ServiceAccount,
// Role and RoleBinding of m, and its Service if any, as rendered (only the
// namespace is set); a nil Role or RoleBinding is left out. It writes a
// kubeconfig for the ServiceAccount into dir, and returns once the Role is
// in effect.
func Apply(ctx context.Context, cp *controlplane.ControlPlane, ns string, m *Manifests, dir string) (*Namespace, error) {
	admin, err := kubernetes.NewForConfig(cp.AdminConfig())
	if err != nil {
		return nil, fmt.Errorf("unable to create an admin client: %w", err)
	}
	n := &Namespace{Name: ns, ServiceAccount: m.ServiceAccount.Name, Admin: admin}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("unable to create namespace %s: %w", ns, err)
	}
	sa := m.ServiceAccount.DeepCopy()
	sa.Namespace = ns
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("unable to create ServiceAccount %s/%s: %w", ns, sa.Name, err)
	}
	var granted []rbac.Rule
	if m.Role != nil {
		role := m.Role.DeepCopy()
		role.Namespace = ns
		if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("unable to create Role %s/%s: %w", ns, role.Name, err)
		}
		granted = Rules(role)
	}
	if m.RoleBinding != nil {
		rb := m.RoleBinding.DeepCopy()
		rb.Namespace = ns
		if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("unable to create RoleBinding %s/%s: %w", ns, rb.Name, err)
		}
	}
	if m.Service != nil {
		svc := m.Service.DeepCopy()
		svc.Namespace = ns
		if _, err := admin.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("unable to create Service %s/%s: %w", ns, svc.Name, err)
		}
	}
	cfg, err := cp.ServiceAccountConfig(ctx, ns, sa.Name)
	if err != nil {
		return nil, err
	}
	n.Kubeconfig = filepath.Join(dir, ns+"-"+sa.Name+".kubeconfig")
	if err := controlplane.WriteKubeconfig(cfg, n.Kubeconfig); err != nil {
		return nil, err
	}
	if m.Role == nil || m.RoleBinding == nil {
		granted = nil
	}
	if err := n.WaitForAccess(ctx, granted, nil); err != nil {
		return nil, err
	}
	return n, nil
}

// User is the ServiceAccount's user name.
func (n *Namespace) User() string {
	return "system:serviceaccount:" + n.Name + ":" + n.ServiceAccount
}

// SetRole replaces the rules of the Role name and waits until exactly the
// new rules are in effect for the ServiceAccount (removed is what is no
// longer granted).
func (n *Namespace) SetRole(ctx context.Context, name string, rules, removed []rbac.Rule) error {
	role, err := n.Admin.RbacV1().Roles(n.Name).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("unable to read Role %s/%s: %w", n.Name, name, err)
	}
	role.Rules = RoleOf(name, rules).Rules
	if _, err := n.Admin.RbacV1().Roles(n.Name).Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("unable to update Role %s/%s: %w", n.Name, name, err)
	}
	return n.WaitForAccess(ctx, rules, removed)
}

// WaitForAccess waits until the authorizer allows the ServiceAccount every
// rule of allowed and denies every rule of denied in the namespace: RBAC
// objects take effect when the API server's informers see them.
func (n *Namespace) WaitForAccess(ctx context.Context, allowed, denied []rbac.Rule) error {
	return n.WaitForAccessIn(ctx, n.Name, allowed, denied)
}

// WaitForAccessIn is WaitForAccess for the rules in namespace ns, which
// may be another than the ServiceAccount's.
func (n *Namespace) WaitForAccessIn(ctx context.Context, ns string, allowed, denied []rbac.Rule) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	want := map[rbac.Rule]bool{}
	for _, r := range allowed {
		want[r] = true
	}
	for _, r := range denied {
		want[r] = false
	}
	for {
		var wrong []string
		for r, w := range want {
			got, err := n.allowed(ctx, ns, r)
			if err != nil {
				return err
			}
			if got != w {
				wrong = append(wrong, fmt.Sprintf("%s allowed=%t", r, got))
			}
		}
		if len(wrong) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			sort.Strings(wrong)
			return fmt.Errorf("RBAC for %s in namespace %s not in effect: %v: %w", n.User(), ns, wrong, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

func (n *Namespace) allowed(ctx context.Context, ns string, r rbac.Rule) (bool, error) {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   n.User(),
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + n.Name, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: r.Verb, Group: r.Group, Resource: r.Resource, Name: r.Name,
		},
	}}
	res, err := n.Admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("unable to review %s for %s: %w", r, n.User(), err)
	}
	return res.Status.Allowed, nil
}

// AddServiceAccount creates another ServiceAccount, name, in n's
// namespace, writes a kubeconfig with a token of it into dir, and returns
// the Namespace as seen by that ServiceAccount. Nothing grants it
// anything yet: see GrantIn.
func (n *Namespace) AddServiceAccount(ctx context.Context, cp *controlplane.ControlPlane, name, dir string) (*Namespace, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: n.Name}}
	if _, err := n.Admin.CoreV1().ServiceAccounts(n.Name).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("unable to create ServiceAccount %s/%s: %w", n.Name, name, err)
	}
	cfg, err := cp.ServiceAccountConfig(ctx, n.Name, name)
	if err != nil {
		return nil, err
	}
	o := &Namespace{
		Name: n.Name, ServiceAccount: name, Admin: n.Admin,
		Kubeconfig: filepath.Join(dir, n.Name+"-"+name+".kubeconfig"),
	}
	if err := controlplane.WriteKubeconfig(cfg, o.Kubeconfig); err != nil {
		return nil, err
	}
	return o, nil
}

// GrantIn creates, as the admin, namespace ns unless it exists, and in it
// the Role and RoleBinding of m as given (only their namespace is set; the
// RoleBinding's subjects must name their namespaces), such as those of
// deploy/migrate-from-0.5 for a ServiceAccount of another namespace. It
// returns once the authorizer grants n's ServiceAccount the Role's rules
// in ns.
func (n *Namespace) GrantIn(ctx context.Context, ns string, m *Manifests) error {
	_, err := n.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("unable to create namespace %s: %w", ns, err)
	}
	role := m.Role.DeepCopy()
	role.Namespace = ns
	if _, err := n.Admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("unable to create Role %s/%s: %w", ns, role.Name, err)
	}
	rb := m.RoleBinding.DeepCopy()
	rb.Namespace = ns
	if _, err := n.Admin.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("unable to create RoleBinding %s/%s: %w", ns, rb.Name, err)
	}
	return n.WaitForAccessIn(ctx, ns, Rules(role), nil)
}

// CreatePods creates one Pod per name from the template, such as a
// Deployment's. With no nodes they stay Pending, which is all the leader
// label needs.
func (n *Namespace) CreatePods(ctx context.Context, tmpl corev1.PodTemplateSpec, names ...string) error {
	for _, name := range names {
		p := &corev1.Pod{ObjectMeta: *tmpl.ObjectMeta.DeepCopy(), Spec: *tmpl.Spec.DeepCopy()}
		p.Name, p.Namespace = name, n.Name
		if _, err := n.Admin.CoreV1().Pods(n.Name).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("unable to create Pod %s/%s: %w", n.Name, name, err)
		}
	}
	return nil
}

// SelectedPods returns the sorted names of the Pods a selector matches,
// such as a Service's: with no endpoints controller running, this is what
// the Service would route to (readiness aside).
func (n *Namespace) SelectedPods(ctx context.Context, selector map[string]string) ([]string, error) {
	list, err := n.Admin.CoreV1().Pods(n.Name).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(selector).String()})
	if err != nil {
		return nil, fmt.Errorf("unable to list Pods: %w", err)
	}
	var names []string
	for _, p := range list.Items {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return names, nil
}

// WaitForSelectedPods waits until the selector matches exactly want (in
// any order) and returns when it first did.
func (n *Namespace) WaitForSelectedPods(ctx context.Context, selector map[string]string, want ...string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	want = slices.Sorted(slices.Values(want))
	for {
		got, err := n.SelectedPods(ctx, selector)
		if err == nil && slices.Equal(got, want) {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("Pods selected by %v: %v, want %v: %w", selector, got, want, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// LeaseEvents returns the core/v1 Events about the Lease name, oldest first.
func (n *Namespace) LeaseEvents(ctx context.Context, lease string) ([]corev1.Event, error) {
	sel := fields.Set{"involvedObject.kind": "Lease", "involvedObject.name": lease}.AsSelector().String()
	list, err := n.Admin.CoreV1().Events(n.Name).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("unable to list Events: %w", err)
	}
	evs := list.Items
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].FirstTimestamp.Before(&evs[j].FirstTimestamp) })
	return evs, nil
}

// Settle waits, up to max, until the API server answers a few requests in
// a row quickly. A freshly started kube-apiserver spends its first seconds
// on start-up work (OpenAPI, RBAC bootstrap), and a leader with a short
// --ttl might miss a renewal meanwhile. It reports how long it waited; not
// settling is not an error.
func Settle(ctx context.Context, admin kubernetes.Interface, max time.Duration) time.Duration {
	const (
		quick = 100 * time.Millisecond
		inRow = 5
	)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	for fast := 0; fast < inRow && ctx.Err() == nil; {
		t := time.Now()
		_, err := admin.CoordinationV1().Leases("default").Get(ctx, "elector-settle", metav1.GetOptions{})
		if d := time.Since(t); d < quick && (err == nil || apierrors.IsNotFound(err)) {
			fast++
		} else {
			fast = 0
		}
		select {
		case <-ctx.Done():
		case <-time.After(pollInterval):
		}
	}
	return time.Since(start)
}
