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

package kubectlelector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/test/internal/sidecar"
)

const (
	// ttl is the sidecars' --ttl (the e2e suite's choice: shorter ones
	// are flaky on a busy 2-core machine).
	ttl = 10 * time.Second
	// guard is a failure deadline for waits, not a timing assertion.
	guard = 90 * time.Second
)

var nsCounter atomic.Int32

// ctx is the test's context with the failure deadline.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), guard)
	t.Cleanup(cancel)
	return c
}

// setup creates a namespace with deploy/base's ServiceAccount, Role and
// RoleBinding, and returns it with the election's Lease name.
func setup(t *testing.T) (*sidecar.Namespace, string) {
	t.Helper()
	dir, err := sidecar.DeployDir()
	if err != nil {
		t.Fatal(err)
	}
	m, err := sidecar.Render(filepath.Join(dir, "base"))
	if err != nil {
		t.Fatal(err)
	}
	lease, err := m.Election()
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("ke-%d-%s", nsCounter.Add(1), strings.ToLower(t.Name()))
	if len(ns) > 63 {
		ns = strings.TrimRight(ns[:63], "-")
	}
	n, err := sidecar.Apply(ctx(t), cp, ns, m, tmpDir)
	if err != nil {
		t.Fatal(err)
	}
	return n, lease
}

// start runs an elector sidecar as Pod pod, killed when the test ends.
func start(t *testing.T, n *sidecar.Namespace, lease, pod string) *sidecar.Replica {
	t.Helper()
	r, err := sidecar.Start(sidecar.Options{
		Binary: electorBin, Kubeconfig: n.Kubeconfig, PodName: pod, PodNamespace: n.Name,
		Args: sidecar.LocalArgs([]string{"--election=" + lease}, "--ttl="+ttl.String()), Log: t.Output(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Kill()
		if strings.Contains(r.Output(), "WARNING: DATA RACE") {
			t.Errorf("%s: the race detector found a data race in elector", pod)
		}
	})
	return r
}

// serviceAccount adds ServiceAccount name to n, bound to a Role of the
// same name with rules (none: no Role), and waits until they are in effect.
func serviceAccount(t *testing.T, n *sidecar.Namespace, name string, rules []rbac.Rule) *sidecar.Namespace {
	t.Helper()
	c := ctx(t)
	sa, err := n.AddServiceAccount(c, cp, name, tmpDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) == 0 {
		return sa
	}
	role := sidecar.RoleOf(name, rules)
	role.Namespace = n.Name
	if _, err := n.Admin.RbacV1().Roles(n.Name).Create(c, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: n.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: n.Name}},
	}
	if _, err := n.Admin.RbacV1().RoleBindings(n.Name).Create(c, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := sa.WaitForAccess(c, rules, nil); err != nil {
		t.Fatal(err)
	}
	return sa
}

// operatorRules are the Roles docs/kubectl-elector.md gives an operator:
// the viewer's (list, status, watch) and handoff's on one Lease.
func operatorRules(lease string) []rbac.Rule {
	return []rbac.Rule{
		{Group: rbac.CoordinationGroup, Resource: "leases", Verb: "get"},
		{Group: rbac.CoordinationGroup, Resource: "leases", Verb: "list"},
		{Group: rbac.CoordinationGroup, Resource: "leases", Verb: "watch"},
		{Group: rbac.CoreGroup, Resource: "events", Verb: "list"},
		{Group: rbac.CoordinationGroup, Resource: "leases", Verb: "update", Name: lease},
		{Group: rbac.CoreGroup, Resource: "pods", Verb: "get"},
		{Group: rbac.CoreGroup, Resource: "pods", Verb: "list"},
		{Group: "authorization.k8s.io", Resource: "localsubjectaccessreviews", Verb: "create"},
	}
}

// readyPods creates Pods of the Deployment "replicas" (ReplicaSet
// replicas-h, as its controller) named after sidecars, and marks them
// Running and Ready, as the kubelet would once their sidecars have read
// the Lease: with no kubelet, the Pods are only objects, which is all
// handoff's candidate check reads.
func readyPods(t *testing.T, n *sidecar.Namespace, names ...string) {
	t.Helper()
	c := ctx(t)
	yes, no := true, false
	for _, name := range names {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: n.Name, Labels: map[string]string{"app": "replicas", "pod-template-hash": "h"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "replicas-h", UID: "00000000-0000-0000-0000-000000000001", Controller: &yes}},
			},
			Spec: corev1.PodSpec{
				ServiceAccountName: n.ServiceAccount, AutomountServiceAccountToken: &no,
				Containers: []corev1.Container{{Name: "elector", Image: "elector"}},
			},
		}
		p, err := n.Admin.CoreV1().Pods(n.Name).Create(c, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
		if _, err := n.Admin.CoreV1().Pods(n.Name).UpdateStatus(c, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// result is one run of the plugin.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// plugin runs kubectl-elector with the kubeconfig of as, in its namespace.
func plugin(t *testing.T, as *sidecar.Namespace, args ...string) result {
	t.Helper()
	c := ctx(t)
	full := append([]string{"--kubeconfig=" + as.Kubeconfig, "-n", as.Name}, args...)
	cmd := exec.CommandContext(c, pluginBin, full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("kubectl-elector %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("$ kubectl elector %s\n%s", strings.Join(args, " "), r)
	if strings.Contains(r.stderr, "WARNING: DATA RACE") {
		t.Errorf("the race detector found a data race in kubectl-elector")
	}
	return r
}

// leaseItem is one item of `list -o json`.
type leaseItem struct {
	Name       string `json:"name"`
	Holder     string `json:"holder"`
	Type       string `json:"type"`
	State      string `json:"state"`
	Token      int32  `json:"token"`
	CanHandOff bool   `json:"canHandOff"`
}

// listJSON runs `list -o json` and returns the items by name.
func listJSON(t *testing.T, as *sidecar.Namespace) map[string]leaseItem {
	t.Helper()
	r := plugin(t, as, "list", "-o", "json")
	if r.code != 0 {
		t.Fatalf("list -o json: %s", r)
	}
	var doc struct {
		Items []leaseItem `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("list -o json: %v\n%s", err, r.stdout)
	}
	out := map[string]leaseItem{}
	for _, it := range doc.Items {
		out[it.Name] = it
	}
	return out
}

// waitList polls `list -o json` until ok accepts the items.
func waitList(t *testing.T, as *sidecar.Namespace, ok func(map[string]leaseItem) bool) map[string]leaseItem {
	t.Helper()
	c := ctx(t)
	for {
		items := listJSON(t, as)
		if ok(items) {
			return items
		}
		select {
		case <-c.Done():
			t.Fatalf("list never showed what was expected; last: %+v", items)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// clientGo runs client-go's tools/leaderelection as identity on Lease
// lease, as the ServiceAccount of as, until the test ends.
func clientGo(t *testing.T, as *sidecar.Namespace, lease, identity string) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", as.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: as.Name, Name: lease},
			Client:     cs.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
		},
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		ReleaseOnCancel: true,
		Name:            lease,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { le.Run(c) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// staleLease creates, as the admin, Lease name held by holder with a
// one-second duration that nobody renews: it is expired two seconds later.
func staleLease(t *testing.T, n *sidecar.Namespace, name, holder string) {
	t.Helper()
	now := metav1.NewMicroTime(time.Now())
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: n.Name},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: &holder, LeaseDurationSeconds: ptr(int32(1)), LeaseTransitions: ptr(int32(4)),
			AcquireTime: &now, RenewTime: &now,
		},
	}
	if _, err := n.Admin.CoordinationV1().Leases(n.Name).Create(ctx(t), l, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// leaseOf reads a Lease as the admin.
func leaseOf(t *testing.T, n *sidecar.Namespace, name string) *coordinationv1.Lease {
	t.Helper()
	l, err := n.Admin.CoordinationV1().Leases(n.Name).Get(ctx(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func token(l *coordinationv1.Lease) int32 {
	if l.Spec.LeaseTransitions == nil {
		return 0
	}
	return *l.Spec.LeaseTransitions
}

// waitStatus runs `status lease` until ok accepts its output.
func waitStatus(t *testing.T, as *sidecar.Namespace, lease string, ok func(result) bool) result {
	t.Helper()
	c := ctx(t)
	for {
		r := plugin(t, as, "status", lease)
		if r.code == 0 && ok(r) {
			return r
		}
		select {
		case <-c.Done():
			t.Fatalf("status %s never showed what was expected: %s", lease, r)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
