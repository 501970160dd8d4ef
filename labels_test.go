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

package elector_test

import (
	"context"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elector-dev/elector"
)

// An elector labels the Lease it creates, and a SharedWatch with a label
// selector sees exactly the labelled Leases and notifies Notify's users.
func TestLabelsAndLabelSelectorWatch(t *testing.T) {
	w := newWorld(t)
	api := w.leases.Leases(ns)
	if _, err := api.Create(context.Background(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	shared := elector.NewSharedWatch(api, ns, elector.SharedWatchOptions{Clock: w.clock, LabelSelector: "group=g"})
	changed, stop := shared.Notify()
	defer stop()
	c := w.start("p1", func(c *elector.Config) {
		c.Watch = shared
		c.Labels = map[string]string{"group": "g"}
	})
	wait(t, c.started, "p1 to lead")
	l, err := api.Get(context.Background(), lease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Labels["group"] != "g" {
		t.Fatalf("labels %v, want group=g", l.Labels)
	}
	for {
		wait(t, changed, "the shared watch to change")
		snap, synced := shared.Snapshot()
		if !synced {
			continue
		}
		if _, ok := snap["other"]; ok {
			t.Fatal("the watch with a label selector delivered an unlabelled Lease")
		}
		if snap[lease] != nil && snap[lease].Spec.HolderIdentity != nil && *snap[lease].Spec.HolderIdentity == "p1" {
			break
		}
	}
	if err := (elector.Config{Leases: api, Namespace: ns, Name: lease, Identity: "x", Labels: map[string]string{"bad key!": "v"}}).Validate(); err == nil {
		t.Fatal("an invalid label key was accepted")
	}
}
