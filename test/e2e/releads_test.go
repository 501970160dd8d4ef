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
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elector-dev/elector/test/internal/sidecar"
)

// A replica that led, lost its Role and campaigns again.

// TestReadyzStaysReadyOnceLeaseRead checks the readiness contract of
// elector -h ("/readyz 200 once the Lease has been read, and from then
// on") on a replica that nobody asked for /readyz before it lost its
// permissions: it read the Lease and led, the Role is deleted, it stops
// leading and campaigns again, unable to read the Lease. /readyz must still
// be 200 (a readiness probe that first asks now must not take the Pod out
// of its Service). TestRoleDeletedAtRuntime, whose prober asks from the
// start, does not see this case.
func TestReadyzStaysReadyOnceLeaseRead(t *testing.T) {
	t.Parallel() // own namespace, processes and files: see main_test.go
	m := render(t, "base")
	lease := election(t, m)
	n := setup(t, m)
	args := sidecar.LocalArgs([]string{"--election=" + lease, "--http=0.0.0.0:4444"}, "--ttl="+restartTTL.String())
	f := newFleet(t, "plain", n, args, nil, false, "replica-0")
	r := f.replicas()[0]
	events := recordEvents(t, r)
	led, err := events.waitFor(ctx(t), time.Time{}, func(l sidecar.Leader) bool { return l.IsLeader })
	if err != nil {
		t.Fatalf("%s does not lead: %v", r.Name, err)
	}
	t.Logf("%s read the Lease and leads (token %d)", r.Name, led.Token)

	c := ctx(t)
	deleted := time.Now()
	if err := n.Admin.RbacV1().Roles(n.Name).Delete(c, m.Role.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := events.waitFor(c, deleted, func(l sidecar.Leader) bool { return !l.IsLeader }); err != nil {
		t.Fatalf("%s still leads after the Role was deleted: %v", r.Name, err)
	}
	// It campaigns again, and its read of the Lease is denied.
	waitUntil(t, r.Name+": /leader shows the denial", func() (bool, string) {
		l, err := r.Leader(ctx(t))
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(l.Error, "may not"), fmt.Sprintf("%+v", l)
	})
	resp, err := r.Get(c, "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusOK {
		t.Errorf("%s: GET /readyz = %d %s, want 200: it read the Lease before (elector -h: \"/readyz 200 once the Lease has been read, and from then on\")",
			r.Name, resp.Status, strings.TrimSpace(string(resp.Body)))
	}
	checkRunning(t, f)
}

// TestTokenGrowsWhenTheSameReplicaLeadsAgain: a replica leads, loses its
// Role (it stops leading), and leads again once the Role is restored. Its
// new tenure has a higher fencing token, and every /watch event that says
// it leads must carry that new token: a client that takes the token from
// /watch or /leader must never get the previous tenure's.
func TestTokenGrowsWhenTheSameReplicaLeadsAgain(t *testing.T) {
	t.Parallel() // own namespace, processes and files: see main_test.go
	m := render(t, "base")
	lease := election(t, m)
	n := setup(t, m)
	args := sidecar.LocalArgs([]string{"--election=" + lease, "--http=0.0.0.0:4444"}, "--ttl="+restartTTL.String())
	f := newFleet(t, "plain", n, args, nil, false, "replica-0")
	r := f.replicas()[0]
	events := recordEvents(t, r)
	first, err := events.waitFor(ctx(t), time.Time{}, func(l sidecar.Leader) bool { return l.IsLeader })
	if err != nil {
		t.Fatalf("%s does not lead: %v", r.Name, err)
	}

	c := ctx(t)
	deleted := time.Now()
	if err := n.Admin.RbacV1().Roles(n.Name).Delete(c, m.Role.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := events.waitFor(c, deleted, func(l sidecar.Leader) bool { return !l.IsLeader }); err != nil {
		t.Fatalf("%s still leads after the Role was deleted: %v", r.Name, err)
	}
	role := m.Role.DeepCopy()
	role.Namespace = n.Name
	restored := time.Now()
	if _, err := n.Admin.RbacV1().Roles(n.Name).Create(c, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Wait for the new tenure as the replicas agree on it: /leader.
	again, err := waitAgreement(c, []*fleet{f})
	if err != nil {
		t.Fatal(err)
	}
	if again[0].token <= first.Token {
		t.Fatalf("token %d after leading again, want above %d", again[0].token, first.Token)
	}
	t.Logf("%s led with token %d, stopped, and leads again with token %d", r.Name, first.Token, again[0].token)
	// The events of the new tenure, up to the agreement.
	time.Sleep(100 * time.Millisecond) // /watch delivers what /leader showed
	for _, e := range events.all() {
		if e.Seen.After(restored) && e.IsLeader && e.Token != again[0].token {
			t.Errorf("%s: /watch event at %s says it leads with token %d (since %s), the previous tenure's; the new tenure's token is %d",
				r.Name, e.Seen.Format(time.RFC3339Nano), e.Token, e.Since, again[0].token)
		}
	}
	checkRunning(t, f)
}
