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
	"net/http"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// The headers in which API Priority and Fairness tells a client how it
// classified the request.
const (
	headerPriorityLevel = "X-Kubernetes-PF-PriorityLevel-UID"
	headerFlowSchema    = "X-Kubernetes-PF-FlowSchema-UID"
)

// TestPriorityFlowSchema checks on the API server's own answer that
// deploy/cluster/priority moves a ServiceAccount's Lease requests from the
// workload-low priority level (where the built-in service-accounts
// FlowSchema puts them) to leader-election, and leaves its other requests
// where they were.
func TestPriorityFlowSchema(t *testing.T) {
	ns := namespace(t)
	cfg, err := cp.ServiceAccountConfig(ctx(t), ns, "elector")
	if err != nil {
		t.Fatal(err)
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lease := cfg.Host + "/apis/coordination.k8s.io/v1/namespaces/" + ns + "/leases/elector"
	configMap := cfg.Host + "/api/v1/namespaces/" + ns + "/configmaps/elector"

	levels := priorityLevels(t)
	low, ok := levels["workload-low"]
	if !ok {
		t.Fatalf("no priority level workload-low among %v", levels)
	}
	le, ok := levels["leader-election"]
	if !ok {
		t.Fatalf("no priority level leader-election among %v", levels)
	}
	name := func(uid string) string {
		for n, u := range levels {
			if u == uid {
				return n
			}
		}
		return "uid " + uid
	}

	if got := classify(t, hc, lease); got != low {
		t.Fatalf("without the FlowSchema, a ServiceAccount's Lease GET runs at %s, want workload-low (the built-in classification changed?)", name(got))
	}
	install(t, "cluster/priority")
	var got string
	if err := waitUntil(ctx(t), func(context.Context) (bool, error) {
		got = classify(t, hc, lease)
		return got == le, nil
	}); err != nil {
		t.Fatalf("with deploy/cluster/priority, a ServiceAccount's Lease GET runs at %s, want leader-election: %v", name(got), err)
	}
	if got := classify(t, hc, configMap); got != low {
		t.Errorf("with deploy/cluster/priority, a ServiceAccount's ConfigMap GET runs at %s, want workload-low: the FlowSchema matches more than Leases", name(got))
	}
}

// classify GETs url (the answer may be 404: the classification comes
// first) and returns the priority level's UID from the response header.
func classify(t *testing.T, hc *http.Client, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, url, http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	uid := resp.Header.Get(headerPriorityLevel)
	if uid == "" || resp.Header.Get(headerFlowSchema) == "" {
		t.Fatalf("GET %s: %s, and no %s and %s headers: is API Priority and Fairness off?", url, resp.Status, headerPriorityLevel, headerFlowSchema)
	}
	return uid
}

// priorityLevels returns the UIDs of the API server's priority levels by
// name, once the mandatory and suggested ones exist.
func priorityLevels(t *testing.T) map[string]string {
	t.Helper()
	levels := map[string]string{}
	err := waitUntil(ctx(t), func(c context.Context) (bool, error) {
		list, err := admin(t).FlowcontrolV1().PriorityLevelConfigurations().List(c, metav1.ListOptions{})
		if err != nil {
			return false, fmt.Errorf("unable to list priority levels: %w", err)
		}
		for _, p := range list.Items {
			levels[p.Name] = string(p.UID)
		}
		_, low := levels["workload-low"]
		_, le := levels["leader-election"]
		return low && le, nil
	})
	if err != nil {
		t.Fatalf("the API server has not created its priority levels: %v (have %v)", err, levels)
	}
	return levels
}
