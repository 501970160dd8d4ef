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
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/sharding"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
)

// listObserver learns, from every list response of a shard's informers,
// whether the API server applied the shard selector, and how many objects
// the client-side filter dropped.
type listObserver interface {
	// listed reports one list response of objects of type kind: sharded
	// is true when it carried ListMeta.ShardInfo.
	listed(kind string, sharded bool)
	// dropped counts objects outside the range that the server sent.
	dropped(n int)
}

// shardedListerWatcher adds a Range's shardSelector to every List and
// Watch of an informer, and filters what comes back by the same range, so
// that the informer holds only the range's objects whether or not the API
// server applies the selector (gate ShardedListAndWatch off, an older
// server, an aggregated API). When the server applies it, the filter
// drops nothing; it costs one FNV-1a hash per object.
//
// It turns the reflector's streaming lists (WatchListClient) off: the
// initial state then comes from a List, whose ShardInfo tells whether the
// server applied the selector (a watch carries no such answer).
type shardedListerWatcher struct {
	lw   toolscache.ListerWatcherWithContext
	sel  sharding.Selector
	str  string // sel.String(), the ShardSelector sent
	kind string // the informer's object type, for logs
	obs  listObserver
}

var (
	_ toolscache.ListerWatcher            = (*shardedListerWatcher)(nil)
	_ toolscache.ListerWatcherWithContext = (*shardedListerWatcher)(nil)
)

// newShardedListerWatcher wraps lw, the ListerWatcher of an informer of
// objects like example, for range r.
func newShardedListerWatcher(lw toolscache.ListerWatcher, example runtime.Object, r Range, obs listObserver) *shardedListerWatcher {
	sel := sharding.NewSelector(r.Requirement())
	return &shardedListerWatcher{
		lw:   toolscache.ToListerWatcherWithContext(lw),
		sel:  sel,
		str:  sel.String(),
		kind: kindOf(example),
		obs:  obs,
	}
}

// kindOf names an informer's object type for logs: the GVK of an
// unstructured object, the Go type otherwise.
func kindOf(obj runtime.Object) string {
	if obj == nil {
		return "<nil>"
	}
	if gvk := obj.GetObjectKind().GroupVersionKind(); !gvk.Empty() {
		return gvk.String()
	}
	return fmt.Sprintf("%T", obj)
}

// IsWatchListSemanticsUnSupported turns the reflector's streaming list
// off (see client-go's watchlist.DoesClientNotSupportWatchListSemantics).
func (s *shardedListerWatcher) IsWatchListSemanticsUnSupported() bool { return true }

// List lists with the shard selector.
func (s *shardedListerWatcher) List(opts metav1.ListOptions) (runtime.Object, error) {
	return s.ListWithContext(context.Background(), opts)
}

// Watch watches with the shard selector.
func (s *shardedListerWatcher) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return s.WatchWithContext(context.Background(), opts)
}

// ListWithContext lists with the shard selector, notes whether the server
// applied it, and drops the items outside the range.
func (s *shardedListerWatcher) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	opts.ShardSelector = s.str
	list, err := s.lw.ListWithContext(ctx, opts)
	if err != nil {
		return nil, err
	}
	_, sharded := shardInfoOf(list)
	s.obs.listed(s.kind, sharded)
	n, err := s.filterList(list)
	if err != nil {
		return nil, err
	}
	s.obs.dropped(n)
	return list, nil
}

// filterList removes from list the items outside the range and returns
// how many it removed.
func (s *shardedListerWatcher) filterList(list runtime.Object) (int, error) {
	items, err := meta.ExtractList(list)
	if err != nil {
		return 0, fmt.Errorf("unable to filter the %s list by shard: %w", s.kind, err)
	}
	kept := items[:0:0]
	for _, it := range items {
		ok, err := s.sel.Matches(it)
		if err != nil {
			return 0, fmt.Errorf("unable to filter the %s list by shard: %w", s.kind, err)
		}
		if ok {
			kept = append(kept, it)
		}
	}
	if len(kept) == len(items) {
		return 0, nil
	}
	if err := meta.SetList(list, kept); err != nil {
		return 0, fmt.Errorf("unable to filter the %s list by shard: %w", s.kind, err)
	}
	return len(items) - len(kept), nil
}

// shardInfoOf returns the ShardInfo selector of a list response, and
// whether it has one.
func shardInfoOf(list runtime.Object) (string, bool) {
	switch l := list.(type) {
	case *unstructured.UnstructuredList:
		sel, found, err := unstructured.NestedString(l.Object, "metadata", "shardInfo", "selector")
		return sel, found && err == nil
	case metav1.ShardedListInterface:
		if info := l.GetShardInfo(); info != nil {
			return info.Selector, true
		}
	}
	return "", false
}

// WatchWithContext watches with the shard selector and drops the events
// of objects outside the range; bookmarks and errors pass.
func (s *shardedListerWatcher) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.ShardSelector = s.str
	w, err := s.lw.WatchWithContext(ctx, opts)
	if err != nil {
		return nil, err
	}
	return newShardWatch(w, s.sel, s.obs), nil
}

// shardWatch passes on the events of a watch whose object lies in the
// range. An object cannot move between ranges: its UID and namespace
// never change.
type shardWatch struct {
	in   watch.Interface
	sel  sharding.Selector
	obs  listObserver
	out  chan watch.Event
	stop chan struct{}
	once sync.Once
}

func newShardWatch(in watch.Interface, sel sharding.Selector, obs listObserver) *shardWatch {
	w := &shardWatch{in: in, sel: sel, obs: obs, out: make(chan watch.Event), stop: make(chan struct{})}
	go w.loop()
	return w
}

// ResultChan returns the filtered events; it is closed when the watch
// ends or is stopped.
func (w *shardWatch) ResultChan() <-chan watch.Event { return w.out }

// Stop stops the watch; the goroutine that filters ends even if nobody
// reads ResultChan any more.
func (w *shardWatch) Stop() {
	w.once.Do(func() {
		close(w.stop)
		w.in.Stop()
	})
}

func (w *shardWatch) loop() {
	defer close(w.out)
	in := w.in.ResultChan()
	for {
		var ev watch.Event
		var ok bool
		select {
		case ev, ok = <-in:
			if !ok {
				return
			}
		case <-w.stop:
			return
		}
		switch ev.Type {
		case watch.Added, watch.Modified, watch.Deleted:
			match, err := w.sel.Matches(ev.Object)
			if err != nil {
				// An object without metadata: nothing an informer can
				// store; let the reflector report it.
				match = true
			}
			if !match {
				w.obs.dropped(1)
				continue
			}
		}
		select {
		case w.out <- ev:
		case <-w.stop:
			return
		}
	}
}
