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

package fake_test

import (
	"context"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/elector-dev/elector/fake"
	"github.com/elector-dev/elector/internal/testwait"
)

func lease(name string, labels map[string]string) *coordinationv1.Lease {
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func next(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	return testwait.Recv(t, w.ResultChan(), "a watch event")
}

func TestLabelSelector(t *testing.T) {
	ctx := context.Background()
	api := fake.NewLeases().Leases("ns")
	in := map[string]string{"elector.dev/shard-group": "g"}
	if _, err := api.Create(ctx, lease("a", in), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Create(ctx, lease("b", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sel := metav1.ListOptions{LabelSelector: "elector.dev/shard-group=g"}
	list, err := api.List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "a" {
		t.Fatalf("List with a label selector returned %v, want only a", list.Items)
	}
	if _, err := api.List(ctx, metav1.ListOptions{LabelSelector: "=="}); err == nil {
		t.Fatal("an invalid label selector was accepted")
	}

	sel.ResourceVersion = list.ResourceVersion
	w, err := api.Watch(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// b starts matching: ADDED; a stops matching: DELETED with its old
	// labels and the new resourceVersion.
	b, _ := api.Get(ctx, "b", metav1.GetOptions{})
	b.Labels = in
	if _, err := api.Update(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, w); ev.Type != watch.Added || ev.Object.(*coordinationv1.Lease).Name != "b" {
		t.Fatalf("got %s %s, want ADDED b", ev.Type, ev.Object.(*coordinationv1.Lease).Name)
	}
	a, _ := api.Get(ctx, "a", metav1.GetOptions{})
	a.Labels = nil
	got, err := api.Update(ctx, a, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev := next(t, w)
	l := ev.Object.(*coordinationv1.Lease)
	if ev.Type != watch.Deleted || l.Name != "a" || l.Labels["elector.dev/shard-group"] != "g" || l.ResourceVersion != got.ResourceVersion {
		t.Fatalf("got %s %s labels %v rv %s, want DELETED a with its old labels at rv %s", ev.Type, l.Name, l.Labels, l.ResourceVersion, got.ResourceVersion)
	}
	// Changes of a Lease that does not match are not delivered.
	a.ResourceVersion = ""
	a2, _ := api.Get(ctx, "a", metav1.GetOptions{})
	if _, err := api.Update(ctx, a2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	b, _ = api.Get(ctx, "b", metav1.GetOptions{})
	if _, err := api.Update(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, w); ev.Type != watch.Modified || ev.Object.(*coordinationv1.Lease).Name != "b" {
		t.Fatalf("got %s %s, want MODIFIED b (a no longer matches)", ev.Type, ev.Object.(*coordinationv1.Lease).Name)
	}
}
