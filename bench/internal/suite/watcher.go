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

package suite

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// leaseWatcher watches the Leases of one namespace as the admin, straight
// at the API server (not through the counting proxy), and timestamps every
// change of holder when it arrives. It is the one definition of "the new
// leader has acquired" shared by every process-level scenario: the moment
// the benchmark sees holderIdentity change to the new holder.
type leaseWatcher struct {
	mu      sync.Mutex
	events  []holderEvent
	changed chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
}

type holderEvent struct {
	at     time.Time
	name   string
	holder string // "" when released or deleted
}

func watchLeases(ctx context.Context, client coordinationv1client.LeasesGetter, ns string) (*leaseWatcher, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := &leaseWatcher{changed: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	leases := client.Leases(ns)
	list, err := leases.List(ctx, metav1.ListOptions{})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("unable to list Leases in %s: %w", ns, err)
	}
	now := time.Now()
	for _, l := range list.Items {
		w.add(holderEvent{at: now, name: l.Name, holder: holderOf(&l)})
	}
	rv := list.ResourceVersion
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			wi, err := leases.Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
			if err != nil {
				sleepCtx(ctx, 100*time.Millisecond)
				continue
			}
			for ev := range wi.ResultChan() {
				at := time.Now()
				if ev.Type == watch.Error {
					// History expired: restart from the current state
					// (an empty resourceVersion replays it as ADDED).
					rv = ""
					break
				}
				l, ok := ev.Object.(*coordinationv1.Lease)
				if !ok {
					continue
				}
				rv = l.ResourceVersion
				switch ev.Type {
				case watch.Added, watch.Modified:
					w.add(holderEvent{at: at, name: l.Name, holder: holderOf(l)})
				case watch.Deleted:
					w.add(holderEvent{at: at, name: l.Name})
				}
			}
			wi.Stop()
		}
	}()
	return w, nil
}

// stop ends the watch.
func (w *leaseWatcher) stop() {
	w.cancel()
	<-w.done
}

func holderOf(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// add records an event if the holder of that Lease changed.
func (w *leaseWatcher) add(e holderEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.events) - 1; i >= 0; i-- {
		if w.events[i].name == e.name {
			if w.events[i].holder == e.holder {
				return
			}
			break
		}
	}
	w.events = append(w.events, e)
	close(w.changed)
	w.changed = make(chan struct{})
}

// waitHolder returns the time the holder of Lease name became one that
// match accepts, for the first such change seen at or after since.
func (w *leaseWatcher) waitHolder(ctx context.Context, name string, since time.Time, match func(string) bool, timeout time.Duration) (holderEvent, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		w.mu.Lock()
		for _, e := range w.events {
			if e.name == name && !e.at.Before(since) && match(e.holder) {
				w.mu.Unlock()
				return e, nil
			}
		}
		changed := w.changed
		w.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return holderEvent{}, fmt.Errorf("Lease %s: no matching holder within %v (holder now %q)", name, timeout, w.holder(name))
		}
	}
}

// holder is the current holder of Lease name as last seen.
func (w *leaseWatcher) holder(name string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.events) - 1; i >= 0; i-- {
		if w.events[i].name == name {
			return w.events[i].holder
		}
	}
	return ""
}

func is(id string) func(string) bool { return func(h string) bool { return h == id } }

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
