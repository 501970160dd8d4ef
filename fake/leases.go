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

// Package fake provides an in-memory coordination.k8s.io/v1 Lease API for
// unit tests of code that uses elector.
//
// NOT FOR PRODUCTION. It keeps Leases in process memory, so candidates
// in different processes never see each other. It implements what elections
// rely on — resourceVersion conflicts, create races, watches with field
// selectors and resumption — and lets a test inject faults and count
// requests. Use it with a fake clock (k8s.io/utils/clock/testing) for
// deterministic tests.
//
// Watches that ask for bookmarks (allowWatchBookmarks) receive one on
// every call of Bookmark, as a real API server sends them now and then
// (about once a minute) to watches that see no changes. HangWatches makes
// the open watches go silent without ending, as over a connection that
// died unnoticed: only a client that treats silence as a failure (an idle
// timeout, with bookmarks as proof of life) recovers from it.
package fake

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	applyconfigurationscoordinationv1 "k8s.io/client-go/applyconfigurations/coordination/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

var leaseResource = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

// historyLimit is how many events a watch can resume from; older
// resourceVersions get 410 Gone, as from a real API server.
const historyLimit = 1000

// Reactor is called before every request. A non-nil error fails the
// request with that error. It may block (for example until ctx ends) to
// simulate an unreachable server.
type Reactor func(ctx context.Context, verb, namespace, name string) error

// Leases is an in-memory Lease API. The zero value is not usable; call
// NewLeases. It is safe for concurrent use.
type Leases struct {
	mu       sync.Mutex
	rv       int64
	objs     map[types.NamespacedName]*coordinationv1.Lease
	history  []event
	watchers map[*watcher]struct{}
	reactor  Reactor
	counts   map[string]int
}

type event struct {
	typ   watch.EventType
	lease *coordinationv1.Lease
	prev  *coordinationv1.Lease // the object before a modification
	rv    int64
}

// NewLeases returns an empty in-memory Lease API.
func NewLeases() *Leases {
	return &Leases{
		objs:     map[types.NamespacedName]*coordinationv1.Lease{},
		watchers: map[*watcher]struct{}{},
		counts:   map[string]int{},
	}
}

var _ coordinationv1client.LeasesGetter = (*Leases)(nil)

// Leases returns the Lease API of one namespace.
func (f *Leases) Leases(namespace string) coordinationv1client.LeaseInterface {
	return &namespaced{f: f, ns: namespace}
}

// SetReactor installs r (nil removes it).
func (f *Leases) SetReactor(r Reactor) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reactor = r
}

// Count returns how many requests with verb ("get", "create", "update",
// "delete", "list", "watch") reached the API, including failed ones.
func (f *Leases) Count(verb string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[verb]
}

// Watchers returns the number of open watches.
func (f *Leases) Watchers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watchers)
}

func (f *Leases) begin(ctx context.Context, verb, ns, name string) error {
	f.mu.Lock()
	f.counts[verb]++
	r := f.reactor
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if r != nil {
		return r(ctx, verb, ns, name)
	}
	return nil
}

// emit records an event and hands it to matching watchers. f.mu is held.
// prev is the object before a modification (nil otherwise).
func (f *Leases) emit(typ watch.EventType, l, prev *coordinationv1.Lease) {
	ev := event{typ: typ, lease: l.DeepCopy(), prev: prev.DeepCopy(), rv: f.rv}
	f.history = append(f.history, ev)
	if len(f.history) > historyLimit {
		f.history = f.history[len(f.history)-historyLimit:]
	}
	for w := range f.watchers {
		w.offer(ev)
	}
}

type namespaced struct {
	f  *Leases
	ns string
}

var _ coordinationv1client.LeaseInterface = (*namespaced)(nil)

func (n *namespaced) key(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: n.ns, Name: name}
}

func (n *namespaced) Get(ctx context.Context, name string, _ metav1.GetOptions) (*coordinationv1.Lease, error) {
	if err := n.f.begin(ctx, "get", n.ns, name); err != nil {
		return nil, err
	}
	n.f.mu.Lock()
	defer n.f.mu.Unlock()
	l, ok := n.f.objs[n.key(name)]
	if !ok {
		return nil, apierrors.NewNotFound(leaseResource, name)
	}
	return l.DeepCopy(), nil
}

func (n *namespaced) Create(ctx context.Context, l *coordinationv1.Lease, _ metav1.CreateOptions) (*coordinationv1.Lease, error) {
	if err := n.f.begin(ctx, "create", n.ns, l.Name); err != nil {
		return nil, err
	}
	n.f.mu.Lock()
	defer n.f.mu.Unlock()
	if _, ok := n.f.objs[n.key(l.Name)]; ok {
		return nil, apierrors.NewAlreadyExists(leaseResource, l.Name)
	}
	if l.ResourceVersion != "" {
		return nil, apierrors.NewBadRequest("resourceVersion must not be set on create")
	}
	n.f.rv++
	c := l.DeepCopy()
	c.Namespace = n.ns
	c.ResourceVersion = strconv.FormatInt(n.f.rv, 10)
	c.UID = types.UID(fmt.Sprintf("lease-%d", n.f.rv))
	n.f.objs[n.key(l.Name)] = c
	n.f.emit(watch.Added, c, nil)
	return c.DeepCopy(), nil
}

func (n *namespaced) Update(ctx context.Context, l *coordinationv1.Lease, _ metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	if err := n.f.begin(ctx, "update", n.ns, l.Name); err != nil {
		return nil, err
	}
	n.f.mu.Lock()
	defer n.f.mu.Unlock()
	cur, ok := n.f.objs[n.key(l.Name)]
	switch {
	case !ok:
		return nil, apierrors.NewNotFound(leaseResource, l.Name)
	case l.ResourceVersion != "" && l.ResourceVersion != cur.ResourceVersion:
		return nil, apierrors.NewConflict(leaseResource, l.Name,
			errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	}
	n.f.rv++
	c := l.DeepCopy()
	c.Namespace, c.UID = n.ns, cur.UID
	c.ResourceVersion = strconv.FormatInt(n.f.rv, 10)
	n.f.objs[n.key(l.Name)] = c
	n.f.emit(watch.Modified, c, cur)
	return c.DeepCopy(), nil
}

func (n *namespaced) Delete(ctx context.Context, name string, _ metav1.DeleteOptions) error {
	if err := n.f.begin(ctx, "delete", n.ns, name); err != nil {
		return err
	}
	n.f.mu.Lock()
	defer n.f.mu.Unlock()
	cur, ok := n.f.objs[n.key(name)]
	if !ok {
		return apierrors.NewNotFound(leaseResource, name)
	}
	delete(n.f.objs, n.key(name))
	n.f.rv++
	c := cur.DeepCopy()
	c.ResourceVersion = strconv.FormatInt(n.f.rv, 10)
	n.f.emit(watch.Deleted, c, nil)
	return nil
}

func (n *namespaced) List(ctx context.Context, opts metav1.ListOptions) (*coordinationv1.LeaseList, error) {
	if err := n.f.begin(ctx, "list", n.ns, ""); err != nil {
		return nil, err
	}
	sel, err := selector(opts)
	if err != nil {
		return nil, err
	}
	n.f.mu.Lock()
	defer n.f.mu.Unlock()
	list := &coordinationv1.LeaseList{ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatInt(n.f.rv, 10)}}
	for k, l := range n.f.objs {
		if k.Namespace == n.ns && matches(sel, l) {
			list.Items = append(list.Items, *l.DeepCopy())
		}
	}
	return list, nil
}

// Watch supports field selectors on metadata.name and
// metadata.namespace, label selectors, resourceVersion
// resumption (410 Gone past the retained history) and ctx cancellation.
// An empty resourceVersion starts with ADDED events for existing Leases.
func (n *namespaced) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	if err := n.f.begin(ctx, "watch", n.ns, ""); err != nil {
		return nil, err
	}
	sel, err := selector(opts)
	if err != nil {
		return nil, err
	}
	f := n.f
	f.mu.Lock()
	defer f.mu.Unlock()
	w := newWatcher(f, n.ns, sel)
	w.bookmarks = opts.AllowWatchBookmarks
	switch {
	case opts.ResourceVersion == "" || opts.ResourceVersion == "0":
		for _, l := range f.objs {
			if w.matches(l) {
				w.queue = append(w.queue, watch.Event{Type: watch.Added, Object: l.DeepCopy()})
			}
		}
	default:
		from, err := strconv.ParseInt(opts.ResourceVersion, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest("invalid resourceVersion " + opts.ResourceVersion)
		}
		if from < f.rv && (len(f.history) == 0 || f.history[0].rv > from+1) {
			return nil, apierrors.NewResourceExpired("too old resource version: " + opts.ResourceVersion)
		}
		for _, ev := range f.history {
			if ev.rv > from {
				w.offer(ev)
			}
		}
	}
	f.watchers[w] = struct{}{}
	go w.pump()
	context.AfterFunc(ctx, w.Stop)
	return w, nil
}

func (n *namespaced) DeleteCollection(context.Context, metav1.DeleteOptions, metav1.ListOptions) error {
	return errNotImplemented("deletecollection")
}

func (n *namespaced) Patch(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) (*coordinationv1.Lease, error) {
	return nil, errNotImplemented("patch")
}

func (n *namespaced) Apply(context.Context, *applyconfigurationscoordinationv1.LeaseApplyConfiguration, metav1.ApplyOptions) (*coordinationv1.Lease, error) {
	return nil, errNotImplemented("apply")
}

func errNotImplemented(verb string) error {
	return apierrors.NewMethodNotSupported(leaseResource, verb)
}

// filter is a request's field and label selectors.
type filter struct {
	fields fields.Selector
	labels labels.Selector
}

func selector(opts metav1.ListOptions) (filter, error) {
	f := filter{fields: fields.Everything(), labels: labels.Everything()}
	if opts.FieldSelector != "" {
		s, err := fields.ParseSelector(opts.FieldSelector)
		if err != nil {
			return f, apierrors.NewBadRequest("invalid field selector: " + err.Error())
		}
		f.fields = s
	}
	if opts.LabelSelector != "" {
		s, err := labels.Parse(opts.LabelSelector)
		if err != nil {
			return f, apierrors.NewBadRequest("invalid label selector: " + err.Error())
		}
		f.labels = s
	}
	return f, nil
}

func matches(sel filter, l *coordinationv1.Lease) bool {
	return sel.fields.Matches(fields.Set{"metadata.name": l.Name, "metadata.namespace": l.Namespace}) &&
		sel.labels.Matches(labels.Set(l.Labels))
}

// watcher queues events without bounds, so a slow reader never blocks
// writers, and pumps them to its result channel.
type watcher struct {
	f         *Leases
	ns        string
	sel       filter
	bookmarks bool // the client asked for bookmarks
	mu        sync.Mutex
	hung      bool // deliver nothing more (HangWatches)
	queue     []watch.Event
	wake      chan struct{}
	result    chan watch.Event
	stop      chan struct{}
	once      sync.Once
}

func newWatcher(f *Leases, ns string, sel filter) *watcher {
	return &watcher{
		f: f, ns: ns, sel: sel,
		wake:   make(chan struct{}, 1),
		result: make(chan watch.Event),
		stop:   make(chan struct{}),
	}
}

func (w *watcher) matches(l *coordinationv1.Lease) bool {
	return l.Namespace == w.ns && matches(w.sel, l)
}

// offer queues ev if it concerns the watch. As from a real API server, a
// modification that makes a Lease match the selectors arrives as ADDED,
// and one that makes it stop matching as DELETED (with the object's
// previous content and the new resourceVersion).
func (w *watcher) offer(ev event) {
	typ, obj := ev.typ, ev.lease
	if ev.typ == watch.Modified && ev.prev != nil {
		now, before := w.matches(ev.lease), w.matches(ev.prev)
		switch {
		case now && !before:
			typ = watch.Added
		case !now && before:
			typ, obj = watch.Deleted, ev.prev.DeepCopy()
			obj.ResourceVersion = ev.lease.ResourceVersion
		}
	}
	if !w.matches(obj) {
		return
	}
	w.mu.Lock()
	w.queue = append(w.queue, watch.Event{Type: typ, Object: obj.DeepCopy()})
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watcher) pump() {
	defer close(w.result)
	for {
		w.mu.Lock()
		var next *watch.Event
		if len(w.queue) > 0 && !w.hung {
			ev := w.queue[0]
			w.queue = w.queue[1:]
			next = &ev
		}
		w.mu.Unlock()
		if next == nil {
			select {
			case <-w.wake:
				continue
			case <-w.stop:
				return
			}
		}
		select {
		case w.result <- *next:
		case <-w.stop:
			return
		}
	}
}

// Stop ends the watch; ResultChan is closed soon after.
func (w *watcher) Stop() {
	w.once.Do(func() {
		w.f.mu.Lock()
		delete(w.f.watchers, w)
		w.f.mu.Unlock()
		close(w.stop)
	})
}

// ResultChan returns the events.
func (w *watcher) ResultChan() <-chan watch.Event { return w.result }

// CloseAll ends every open watch, as an API server restart would.
func (f *Leases) CloseAll() {
	f.mu.Lock()
	ws := make([]*watcher, 0, len(f.watchers))
	for w := range f.watchers {
		ws = append(ws, w)
	}
	f.mu.Unlock()
	for _, w := range ws {
		w.Stop()
	}
}

// Bookmark sends a BOOKMARK event, carrying the current resourceVersion,
// to every open watch that asked for bookmarks (allowWatchBookmarks), as a
// real API server does periodically. A hung watch (HangWatches) stays
// silent.
func (f *Leases) Bookmark() {
	f.mu.Lock()
	defer f.mu.Unlock()
	rv := strconv.FormatInt(f.rv, 10)
	for w := range f.watchers {
		if !w.bookmarks {
			continue
		}
		obj := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv}}
		w.mu.Lock()
		w.queue = append(w.queue, watch.Event{Type: watch.Bookmark, Object: obj})
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// HangWatches makes every open watch go silent: it stays open but
// delivers no more events or bookmarks, as a watch over a connection that
// died without being closed. Watches opened later work. It returns the
// number of watches hung.
func (f *Leases) HangWatches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for w := range f.watchers {
		w.mu.Lock()
		w.hung = true
		w.mu.Unlock()
	}
	return len(f.watchers)
}
