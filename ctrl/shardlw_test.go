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

package ctrl

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/elector-dev/elector/internal/testwait"
)

// observed records what a shardedListerWatcher reports.
type observed struct {
	mu    sync.Mutex
	lists []bool // sharded, per list response
	drops int
}

func (o *observed) listed(_ string, sharded bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lists = append(o.lists, sharded)
}

func (o *observed) dropped(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.drops += n
}

func (o *observed) get() ([]bool, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]bool(nil), o.lists...), o.drops
}

// testRange is shard 0 of 2 by UID.
func testRange(t *testing.T) Range {
	t.Helper()
	r, err := NewRange(ShardByUID, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// configMaps returns n ConfigMaps in r and n outside it, with UIDs
// cm-<i> (found by trying names in order, deterministically).
func configMaps(t *testing.T, r Range, n int) (in, out []corev1.ConfigMap) {
	t.Helper()
	for i := 0; len(in) < n || len(out) < n; i++ {
		cm := corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("cm-%d", i), Namespace: "ns", UID: types.UID(fmt.Sprintf("uid-%d", i)), ResourceVersion: "1",
		}}
		ok, err := r.Matches(&cm)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ok && len(in) < n:
			in = append(in, cm)
		case !ok && len(out) < n:
			out = append(out, cm)
		}
	}
	return in, out
}

// fakeLW is an informer's ListerWatcher that answers List with list and
// Watch with w, and records the options of each call.
type fakeLW struct {
	mu    sync.Mutex
	opts  []metav1.ListOptions
	list  func() runtime.Object
	watch watch.Interface
}

func (f *fakeLW) lw() *toolscache.ListWatch {
	return &toolscache.ListWatch{
		ListWithContextFunc: func(_ context.Context, o metav1.ListOptions) (runtime.Object, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.opts = append(f.opts, o)
			return f.list(), nil
		},
		WatchFuncWithContext: func(_ context.Context, o metav1.ListOptions) (watch.Interface, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.opts = append(f.opts, o)
			return f.watch, nil
		},
	}
}

func (f *fakeLW) calls() []metav1.ListOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]metav1.ListOptions(nil), f.opts...)
}

func names(t *testing.T, list runtime.Object) []string {
	t.Helper()
	var got []string
	switch l := list.(type) {
	case *corev1.ConfigMapList:
		for _, cm := range l.Items {
			got = append(got, cm.Name)
		}
	case *unstructured.UnstructuredList:
		for _, u := range l.Items {
			got = append(got, u.GetName())
		}
	default:
		t.Fatalf("unexpected list %T", list)
	}
	sort.Strings(got)
	return got
}

func namesOf(cms ...[]corev1.ConfigMap) []string {
	var out []string
	for _, l := range cms {
		for _, cm := range l {
			out = append(out, cm.Name)
		}
	}
	sort.Strings(out)
	return out
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// TestShardedListSendsTheSelectorAndDetectsTheAnswer: every List carries
// the range's selector; a response with ShardInfo is reported sharded
// (the server applied it), one without is reported unsharded and
// filtered here, for typed and unstructured lists alike.
func TestShardedListSendsTheSelectorAndDetectsTheAnswer(t *testing.T) {
	r := testRange(t)
	in, out := configMaps(t, r, 5)
	info := &metav1.ShardInfo{Selector: r.Selector()}
	toUnstructured := func(l *corev1.ConfigMapList) *unstructured.UnstructuredList {
		u := &unstructured.UnstructuredList{Object: map[string]any{"metadata": map[string]any{"resourceVersion": "7"}}}
		if l.ShardInfo != nil {
			u.Object["metadata"].(map[string]any)["shardInfo"] = map[string]any{"selector": l.ShardInfo.Selector}
		}
		for i := range l.Items {
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&l.Items[i])
			if err != nil {
				t.Fatal(err)
			}
			u.Items = append(u.Items, unstructured.Unstructured{Object: obj})
		}
		return u
	}
	for _, tc := range []struct {
		name        string
		list        *corev1.ConfigMapList
		wantSharded bool
		wantDropped int
	}{
		{"server applied the selector", &corev1.ConfigMapList{ListMeta: metav1.ListMeta{ResourceVersion: "7", ShardInfo: info}, Items: in}, true, 0},
		{"server ignored the selector", &corev1.ConfigMapList{ListMeta: metav1.ListMeta{ResourceVersion: "7"}, Items: append(append([]corev1.ConfigMap(nil), in...), out...)}, false, len(out)},
	} {
		for _, unstr := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/unstructured=%v", tc.name, unstr), func(t *testing.T) {
				f := &fakeLW{list: func() runtime.Object {
					if unstr {
						return toUnstructured(tc.list.DeepCopy())
					}
					return tc.list.DeepCopy()
				}}
				obs := &observed{}
				slw := newShardedListerWatcher(f.lw(), &corev1.ConfigMap{}, r, obs)
				got, err := slw.List(metav1.ListOptions{ResourceVersion: "0", LabelSelector: "a=b"})
				if err != nil {
					t.Fatal(err)
				}
				calls := f.calls()
				if len(calls) != 1 || calls[0].ShardSelector != r.Selector() || calls[0].LabelSelector != "a=b" || calls[0].ResourceVersion != "0" {
					t.Fatalf("List sent %+v, want the caller's options with ShardSelector %q", calls, r.Selector())
				}
				if want := namesOf(in); !equal(names(t, got), want) {
					t.Errorf("List returned %v, want the range's objects %v", names(t, got), want)
				}
				lists, dropped := obs.get()
				if len(lists) != 1 || lists[0] != tc.wantSharded || dropped != tc.wantDropped {
					t.Errorf("observed lists %v and %d dropped, want [%v] and %d", lists, dropped, tc.wantSharded, tc.wantDropped)
				}
			})
		}
	}
}

// TestShardedWatchDropsOtherRangesAndPassesBookmarks: the Watch carries
// the selector; events of objects outside the range are dropped (and
// counted), those inside pass in order, as do bookmarks (whose object
// has no UID) and errors.
func TestShardedWatchDropsOtherRangesAndPassesBookmarks(t *testing.T) {
	r := testRange(t)
	in, out := configMaps(t, r, 2)
	fw := watch.NewFakeWithChanSize(16, false)
	f := &fakeLW{watch: fw}
	obs := &observed{}
	slw := newShardedListerWatcher(f.lw(), &corev1.ConfigMap{}, r, obs)
	w, err := slw.Watch(metav1.ListOptions{ResourceVersion: "7", AllowWatchBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if calls := f.calls(); len(calls) != 1 || calls[0].ShardSelector != r.Selector() || !calls[0].AllowWatchBookmarks {
		t.Fatalf("Watch sent %+v, want the caller's options with ShardSelector %q", calls, r.Selector())
	}
	bookmark := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "9"}}
	status := &metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired}
	fw.Add(&out[0])
	fw.Add(&in[0])
	fw.Modify(&out[0])
	fw.Action(watch.Bookmark, bookmark)
	fw.Modify(&in[0])
	fw.Delete(&out[1])
	fw.Delete(&in[1])
	fw.Error(status)
	var got []string
	for len(got) < 5 {
		ev := testwait.Recv(t, w.ResultChan(), "the filtered watch's next event")
		name := ""
		if o, ok := ev.Object.(metav1.Object); ok {
			name = o.GetName()
		}
		got = append(got, string(ev.Type)+" "+name)
	}
	want := []string{"ADDED " + in[0].Name, "BOOKMARK ", "MODIFIED " + in[0].Name, "DELETED " + in[1].Name, "ERROR "}
	if !equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if _, dropped := obs.get(); dropped != 3 {
		t.Errorf("%d events dropped, want 3 (the other range's)", dropped)
	}
}
