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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/elector-dev/elector/fake"
)

// TestBookmarksGoOnlyToWatchesThatAskForThem: a bookmark carries the
// current resourceVersion and reaches only watches opened with
// allowWatchBookmarks.
func TestBookmarksGoOnlyToWatchesThatAskForThem(t *testing.T) {
	ctx := context.Background()
	leases := fake.NewLeases()
	api := leases.Leases("ns")
	created, err := api.Create(ctx, lease("a", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	with, err := api.Watch(ctx, metav1.ListOptions{ResourceVersion: created.ResourceVersion, AllowWatchBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer with.Stop()
	without, err := api.Watch(ctx, metav1.ListOptions{ResourceVersion: created.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer without.Stop()

	leases.Bookmark()
	ev := next(t, with)
	if ev.Type != watch.Bookmark {
		t.Fatalf("event = %v, want BOOKMARK", ev.Type)
	}
	if m, ok := ev.Object.(metav1.Object); !ok || m.GetResourceVersion() != created.ResourceVersion {
		t.Fatalf("bookmark object = %#v, want resourceVersion %s", ev.Object, created.ResourceVersion)
	}
	// The watch without bookmarks sees the next change first.
	if _, err := api.Update(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, without); ev.Type != watch.Modified {
		t.Fatalf("event = %v on a watch without bookmarks, want MODIFIED", ev.Type)
	}
}

// TestHungWatchesStaySilentAndOpen: after HangWatches the open watches
// deliver nothing (their channel stays open), while a new watch works.
func TestHungWatchesStaySilentAndOpen(t *testing.T) {
	ctx := context.Background()
	leases := fake.NewLeases()
	api := leases.Leases("ns")
	created, err := api.Create(ctx, lease("a", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old, err := api.Watch(ctx, metav1.ListOptions{ResourceVersion: created.ResourceVersion, AllowWatchBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Stop()
	if n := leases.HangWatches(); n != 1 {
		t.Fatalf("HangWatches = %d, want 1", n)
	}
	updated, err := api.Update(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leases.Bookmark()
	fresh, err := api.Watch(ctx, metav1.ListOptions{ResourceVersion: created.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Stop()
	if ev := next(t, fresh); ev.Type != watch.Modified || ev.Object.(metav1.Object).GetResourceVersion() != updated.ResourceVersion {
		t.Fatalf("new watch: event %v, want the update", ev.Type)
	}
	select {
	case ev, ok := <-old.ResultChan():
		t.Fatalf("hung watch delivered %v (open %v)", ev.Type, ok)
	default:
	}
	if leases.Watchers() != 2 {
		t.Fatalf("Watchers = %d, want 2 (the hung one stays open)", leases.Watchers())
	}
}
