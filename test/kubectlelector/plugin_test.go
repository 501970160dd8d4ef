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
	"regexp"
	"strings"
	"testing"

	"github.com/elector-dev/elector/internal/rbac"
)

// TestListAndStatus: an elector sidecar's Lease, a client-go candidate's
// and a Lease whose holder stopped, as an operator with the viewer Role.
func TestListAndStatus(t *testing.T) {
	n, lease := setup(t)
	start(t, n, lease, "replica-a")
	legacy := serviceAccount(t, n, "legacy", rbac.LeaseRules("legacy-controller"))
	clientGo(t, legacy, "legacy-controller", "legacy-7d9f")
	staleLease(t, n, "batch-job", "batch-0")
	op := serviceAccount(t, n, "operator", operatorRules(lease))

	items := waitList(t, op, func(m map[string]leaseItem) bool {
		return m[lease].State == "held" && m["legacy-controller"].State == "held" && m["batch-job"].State == "expired"
	})
	if it := items[lease]; it.Holder != "replica-a" || it.Type != "elector" || !it.CanHandOff {
		t.Errorf("elector Lease: %+v, want held by replica-a, type elector, canHandOff", it)
	}
	if it := items["legacy-controller"]; it.Holder != "legacy-7d9f" || it.Type != "client-go" || it.CanHandOff {
		t.Errorf("client-go Lease: %+v, want held by legacy-7d9f, type client-go, not canHandOff", it)
	}
	if it := items["batch-job"]; it.Holder != "batch-0" || it.Token != 4 {
		t.Errorf("stopped holder's Lease: %+v, want batch-0 with token 4", it)
	}

	r := plugin(t, op, "list")
	if r.code != 0 {
		t.Fatalf("list: %s", r)
	}
	for _, row := range []string{
		`(?m)^NAME\s+HOLDER\s+TYPE\s+STATE\s+TOKEN\s+TENURE\s+DURATION\s+RENEWED$`,
		`(?m)^batch-job\s+batch-0\s+client-go\s+expired\s+4\s+\S+\s+1s\s+\d+s ago$`,
		`(?m)^` + lease + `\s+replica-a\s+elector\s+held\s+0\s+\S+\s+10s\s+\d+s ago$`,
		`(?m)^legacy-controller\s+legacy-7d9f\s+client-go\s+held\s+0\s+\S+\s+15s\s+\d+s ago$`,
	} {
		if !regexp.MustCompile(row).MatchString(r.stdout) {
			t.Errorf("list output has no line matching %s:\n%s", row, r.stdout)
		}
	}
	if r := plugin(t, op, "list", "-o", "wide"); r.code != 0 || !strings.Contains(r.stdout, "HANDOFF") {
		t.Errorf("list -o wide: %s", r)
	}
	// kubectl's output flags.
	r = plugin(t, op, "list", "-o", "name")
	if want := "lease.coordination.k8s.io/batch-job\nlease.coordination.k8s.io/" + lease + "\nlease.coordination.k8s.io/legacy-controller\n"; r.code != 0 || r.stdout != want {
		t.Errorf("list -o name: %s\nwant stdout %q", r, want)
	}
	if r := plugin(t, op, "list", "--no-headers"); r.code != 0 || strings.Contains(r.stdout, "NAME") || strings.Count(r.stdout, "\n") != 3 {
		t.Errorf("list --no-headers: %s", r)
	}
	if r := plugin(t, op, "list", "-l", "app=none"); r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "No election Leases found in namespace "+n.Name+" with labels app=none.") {
		t.Errorf("list -l app=none: %s", r)
	}
	if r := plugin(t, op, "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "kubectl-elector ") {
		t.Errorf("version: %s", r)
	}

	// The sidecar writes its Events in the background: wait for the first.
	became := regexp.MustCompile(`(?m)^  \S+\s+replica-a\s+became leader, token 0$`)
	r = waitStatus(t, op, lease, func(r result) bool { return became.MatchString(r.stdout) })
	for _, want := range []string{
		"Holder:           replica-a (elector ",
		"; acts on handoff requests)",
		"State:            held: last written ",
		"the API server keeps Events for\nabout an hour",
		"replica-a  |████████████████████████████████████████|  token 0  ",
	} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("status %s: want %q in\n%s", lease, want, r)
		}
	}
	r = plugin(t, op, "status", "legacy-controller")
	if r.code != 0 || !strings.Contains(r.stdout, "legacy-7d9f (client-go or compatible: no current elector marker; cannot hand off)") {
		t.Errorf("status legacy-controller: %s", r)
	}
	r = plugin(t, op, "status", "batch-job")
	if r.code != 0 || !strings.Contains(r.stdout, "State:            expired: last written ") {
		t.Errorf("status batch-job: %s", r)
	}
	r = plugin(t, op, "status", "no-such-lease")
	if r.code != 6 || !strings.Contains(r.stderr, `Lease "no-such-lease" not found in namespace `+n.Name) {
		t.Errorf("status no-such-lease: %s", r)
	}
	// All namespaces need a ClusterRole, which the operator does not have.
	r = plugin(t, op, "list", "-A")
	if r.code != 4 || !strings.Contains(r.stderr, "which only a ClusterRole grants; name a namespace with -n instead") {
		t.Errorf("list -A: %s", r)
	}
}

// TestHandoffRefusedForClientGo: a client-go holder does not act on a
// request; the plugin says so at once and writes nothing.
func TestHandoffRefusedForClientGo(t *testing.T) {
	n, _ := setup(t)
	legacy := serviceAccount(t, n, "legacy", rbac.LeaseRules("legacy-controller"))
	clientGo(t, legacy, "legacy-controller", "legacy-7d9f")
	op := serviceAccount(t, n, "operator", operatorRules("legacy-controller"))
	waitList(t, op, func(m map[string]leaseItem) bool { return m["legacy-controller"].State == "held" })

	r := plugin(t, op, "handoff", "legacy-controller")
	if r.code != 7 || r.stdout != "" ||
		!strings.Contains(r.stderr, "is held by legacy-7d9f, which does not act on handoff requests") ||
		!strings.Contains(r.stderr, "client-go (or other non-elector) candidate. Refusing instead of waiting.") {
		t.Errorf("handoff against client-go: %s", r)
	}
	if _, ok := leaseOf(t, n, "legacy-controller").Annotations["elector.dev/handoff-to"]; ok {
		t.Error("the refused handoff wrote a request on the Lease")
	}
}

// TestOperatorWithoutPermission: the 403 names what is missing and prints
// the Role and RoleBinding that grant it.
func TestOperatorWithoutPermission(t *testing.T) {
	n, lease := setup(t)
	start(t, n, lease, "replica-a")
	nobody := serviceAccount(t, n, "nobody", nil)
	r := plugin(t, nobody, "handoff", lease)
	for _, want := range []string{
		"kubectl elector: unable to get Lease " + n.Name + "/" + lease + ": ServiceAccount " + n.Name + "/nobody lacks 5 permissions in namespace " + n.Name,
		"kind: Role\nmetadata:\n  name: elector-handoff-" + lease + "\n  namespace: " + n.Name + "\nrules:\n- apiGroups: [\"\"]\n  resources: [\"pods\"]\n  verbs: [\"get\", \"list\"]\n" +
			"- apiGroups: [\"coordination.k8s.io\"]\n  resources: [\"leases\"]\n  resourceNames: [\"" + lease + "\"]\n  verbs: [\"get\", \"watch\", \"update\"]\n",
		"subjects:\n- kind: ServiceAccount\n  name: nobody\n  namespace: " + n.Name + "\n",
		"kubectl create role elector-handoff-" + lease + "-1",
	} {
		if r.code != 4 || !strings.Contains(r.stderr, want) {
			t.Errorf("handoff as nobody: want exit 4 and\n%s\nin %s", want, r)
		}
	}
	r = plugin(t, nobody, "list")
	if r.code != 4 || !strings.Contains(r.stderr, "name: elector-viewer") {
		t.Errorf("list as nobody: %s", r)
	}
}

// TestWhy: the deploy/base ServiceAccount has everything; another has
// nothing and is given the Role.
func TestWhy(t *testing.T) {
	n, lease := setup(t)
	op := serviceAccount(t, n, "operator", operatorRules(lease))
	serviceAccount(t, n, "newcomer", nil)

	r := plugin(t, op, "why", lease, "--for", n.User())
	if r.code != 0 || !strings.Contains(r.stdout, "Yes: ServiceAccount "+n.Name+"/"+n.ServiceAccount+" has every permission the elector sidecar needs for this Lease.") ||
		!strings.Contains(r.stdout, "RBAC: allowed by RoleBinding") {
		t.Errorf("why for the deploy ServiceAccount: %s", r)
	}
	r = plugin(t, op, "why", lease, "--for", "system:serviceaccount:"+n.Name+":newcomer")
	for _, want := range []string{
		"  NO       " + n.Name,
		`update leases.coordination.k8s.io "` + lease + `"`,
		"name: elector-" + lease,
		"- kind: ServiceAccount\n  name: newcomer\n  namespace: " + n.Name,
	} {
		if r.code != 9 || !strings.Contains(r.stdout, want) {
			t.Errorf("why for newcomer: want exit 9 and %q in %s", want, r)
		}
	}
	if !strings.Contains(r.stderr, "cannot run elector for Lease") {
		t.Errorf("why for newcomer: stderr %q", r.stderr)
	}
	// The operator itself needs create localsubjectaccessreviews.
	nobody := serviceAccount(t, n, "viewer-less", nil)
	if r := plugin(t, nobody, "why", lease, "--for", n.User()); r.code != 4 || !strings.Contains(r.stderr, "localsubjectaccessreviews") {
		t.Errorf("why without permission to review: %s", r)
	}
}
