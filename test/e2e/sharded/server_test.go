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

package sharded

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/sharding"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/elector-dev/elector/test/controlplane"
)

// lowerHalf selects the UIDs whose FNV-1a hash is in the lower half of
// the hash space.
const lowerHalf = "shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')"

// inLowerHalf is lowerHalf evaluated on the client, with the API
// server's own hash.
func inLowerHalf(uid string) bool { return sharding.HashField(uid) < "8000000000000000" }

// TestServerShardSelector checks the two API servers the e2e tests run
// on, before any operator: with the gate on, a LIST with a shardSelector
// returns only the objects in the range and says so in ListMeta.ShardInfo,
// and a WATCH with it streams only their events (through the watch
// cache, which is on by default in the harness); with the gate off, the
// selector is ignored: every object, no ShardInfo, every event. The
// operator's sharded mode tells the two apart by that ShardInfo.
func TestServerShardSelector(t *testing.T) {
	for _, tc := range []struct {
		name   string
		gateOn bool
	}{{"gate on", true}, {"gate off", false}} {
		t.Run(tc.name, func(t *testing.T) {
			c := cp
			if !tc.gateOn {
				c = gateOffPlane(t)
			}
			checkServerSelector(t, c, tc.gateOn)
		})
	}
}

func checkServerSelector(t *testing.T, c *controlplane.ControlPlane, gateOn bool) {
	kube, err := kubernetes.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	ns := fmt.Sprintf("selector-%d", time.Now().UnixNano()%1e6)
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const n = 40
	sel := metav1.ListOptions{LabelSelector: "probe=1", ShardSelector: lowerHalf}
	inRange := map[string]bool{}
	for i := range n {
		cm, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("cm-%d", i), Labels: map[string]string{"probe": "1"},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		inRange[cm.Name] = inLowerHalf(string(cm.UID))
	}
	want := 0
	for _, in := range inRange {
		if in {
			want++
		}
	}
	if want == 0 || want == n {
		t.Fatalf("%d of %d UIDs in the lower half: the check below would prove nothing", want, n)
	}

	list, err := kube.CoreV1().ConfigMaps(ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	if gateOn {
		if list.ShardInfo == nil || list.ShardInfo.Selector == "" {
			t.Errorf("gate on: the list has no ShardInfo: the API server did not apply the selector")
		} else {
			t.Logf("gate on: ShardInfo.Selector = %q", list.ShardInfo.Selector)
		}
		if len(list.Items) != want {
			t.Errorf("gate on: the list has %d ConfigMaps, want the %d in the range", len(list.Items), want)
		}
		for _, cm := range list.Items {
			if !inRange[cm.Name] {
				t.Errorf("gate on: %s (uid %s, hash %s) is outside the range", cm.Name, cm.UID, sharding.HashField(string(cm.UID)))
			}
		}
	} else {
		if list.ShardInfo != nil {
			t.Errorf("gate off: the list has ShardInfo %+v", *list.ShardInfo)
		}
		if len(list.Items) != n {
			t.Errorf("gate off: the list has %d ConfigMaps, want all %d (the selector ignored)", len(list.Items), n)
		}
	}

	// A watch from the list's resourceVersion sees one update of every
	// object; with the gate on only those in the range.
	w, err := kube.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{
		LabelSelector: sel.LabelSelector, ShardSelector: sel.ShardSelector, ResourceVersion: list.ResourceVersion,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := range n {
		name := fmt.Sprintf("cm-%d", i)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"probe": "1"}}, Data: map[string]string{"v": "2"}}
		if _, err := kube.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A marker in the range, updated last: once its event arrives, every
	// earlier event has arrived (one stream, in resourceVersion order).
	marker := ""
	for name, in := range inRange {
		if in {
			marker = name
			break
		}
	}
	if _, err := kube.CoreV1().ConfigMaps(ns).Patch(ctx, marker, "application/merge-patch+json", []byte(`{"data":{"v":"3"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for done := false; !done; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("the watch closed early")
			}
			if ev.Type != watch.Modified {
				continue
			}
			cm := ev.Object.(*corev1.ConfigMap)
			seen[cm.Name]++
			done = cm.Name == marker && cm.Data["v"] == "3"
		case <-ctx.Done():
			t.Fatalf("the marker's event did not arrive; seen %v", seen)
		}
	}
	outside := 0
	for name := range seen {
		if !inRange[name] {
			outside++
		}
	}
	if gateOn {
		if len(seen) != want || outside != 0 {
			t.Errorf("gate on: the watch streamed %d objects, %d outside the range; want the %d in it and none outside", len(seen), outside, want)
		}
	} else if len(seen) != n {
		t.Errorf("gate off: the watch streamed %d objects, want all %d", len(seen), n)
	}
	t.Logf("gate on=%v: list %d of %d, watch %d objects (%d outside the range)", gateOn, len(list.Items), n, len(seen), outside)
}
