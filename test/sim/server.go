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

package sim

import (
	"context"
	"errors"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	applycoordinationv1 "k8s.io/client-go/applyconfigurations/coordination/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/elector-dev/elector/fake"
)

// namespace is the one namespace of every simulated Lease.
const namespace = "sim"

var leaseGR = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

// server is the simulated Lease API: package fake's store (resourceVersion
// CAS, 409, 404, create races, watch history and 410 on resume) behind a
// fault layer that every request of every node passes through. The fault
// layer adds latency (so that replies and watch events reorder), fails
// requests (403, 429, 500, 503, timeouts), loses replies after a write
// succeeded, and makes watch streams lag, drop, fail with 410 on resume,
// hang silently, and send bookmarks.
type server struct {
	sim   *Sim
	store *fake.Leases
	base  coordinationv1client.LeaseInterface
}

func newServer(s *Sim) *server {
	st := fake.NewLeases()
	return &server{sim: s, store: st, base: st.Leases(namespace)}
}

// client is one node instance's connection to the server. Everything the
// instance asks goes through it, so that the checkers can count its
// requests and know what it has seen, and faults can be aimed at it.
type client struct {
	srv  *server
	inst *instance
}

var _ coordinationv1client.LeaseInterface = (*client)(nil)

// Leases makes a client a LeasesGetter for client-go's LeaseLock.
func (c *client) Leases(string) coordinationv1client.LeaseInterface { return c }

// errUnreachable is what a request of a crashed or partitioned node gets.
var errUnreachable = errors.New("dial tcp 10.0.0.1:6443: connect: connection refused")

// before applies the faults that act before a request reaches the store:
// the instance is gone or partitioned, latency, an error reply, a timeout.
func (c *client) before(ctx context.Context, verb, name string) error {
	s := c.srv.sim
	c.inst.request(verb, name)
	if c.inst.dead() {
		return errUnreachable
	}
	if err := s.latency(ctx); err != nil {
		return err
	}
	if c.inst.partitioned() {
		if s.chance(0.5) {
			<-ctx.Done()
			return ctx.Err()
		}
		return errUnreachable
	}
	if !s.faulty() {
		return nil
	}
	switch p := s.float(); {
	case p < s.cfg.errRate/4:
		return apierrors.NewTooManyRequests("throttled", 1)
	case p < s.cfg.errRate/2:
		return apierrors.NewServiceUnavailable("etcd leader changed")
	case p < s.cfg.errRate*3/4:
		return apierrors.NewInternalError(errors.New("etcdserver: request timed out"))
	case p < s.cfg.errRate*7/8:
		return apierrors.NewForbidden(leaseGR, name, errors.New("RBAC: role not found (API server restarting)"))
	case p < s.cfg.errRate:
		<-ctx.Done() // no answer before the client's timeout
		return ctx.Err()
	}
	return nil
}

// after applies the faults that act after the store answered: latency,
// and a reply lost after a write succeeded.
func (c *client) after(ctx context.Context, write bool) error {
	s := c.srv.sim
	if err := s.latency(ctx); err != nil {
		return err // the write happened; the reply is lost
	}
	if write && s.faulty() && s.chance(s.cfg.lostReply) {
		<-ctx.Done()
		return ctx.Err()
	}
	if c.inst.dead() {
		return errUnreachable
	}
	return nil
}

func (c *client) Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error) {
	if err := c.before(ctx, "get", name); err != nil {
		return nil, err
	}
	l, err := c.srv.base.Get(ctx, name, opts)
	if aerr := c.after(ctx, false); aerr != nil {
		return nil, aerr
	}
	if err == nil {
		c.inst.saw(l)
	}
	return l, err
}

func (c *client) Create(ctx context.Context, l *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error) {
	knew := c.inst.knowledge(l.Name) // what it knew when it chose to write
	if err := c.before(ctx, "create", l.Name); err != nil {
		return nil, err
	}
	got, err := c.srv.base.Create(ctx, l, opts)
	if err == nil {
		c.inst.wroteTo(got, knew)
		c.srv.sim.wrote(c.inst, "create", got)
	}
	if aerr := c.after(ctx, err == nil); aerr != nil {
		return nil, aerr
	}
	if err == nil {
		c.inst.saw(got)
	}
	return got, err
}

func (c *client) Update(ctx context.Context, l *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	knew := c.inst.knowledge(l.Name) // what it knew when it chose to write
	if err := c.before(ctx, "update", l.Name); err != nil {
		return nil, err
	}
	if c.srv.sim.cfg.inject == InjectNoVersionCheck {
		// Injected bug: the server ignores the resourceVersion condition.
		if cur, err := c.srv.base.Get(ctx, l.Name, metav1.GetOptions{}); err == nil {
			l = l.DeepCopy()
			l.ResourceVersion = cur.ResourceVersion
		}
	}
	got, err := c.srv.base.Update(ctx, l, opts)
	if err == nil {
		c.inst.wroteTo(got, knew)
		c.srv.sim.wrote(c.inst, "update", got)
	} else {
		c.srv.sim.trace(c.inst, "update %s rv=%s failed: %v", l.Name, l.ResourceVersion, err)
	}
	if aerr := c.after(ctx, err == nil); aerr != nil {
		return nil, aerr
	}
	if err == nil {
		c.inst.saw(got)
	}
	return got, err
}

func (c *client) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	if err := c.before(ctx, "delete", name); err != nil {
		return err
	}
	// Only the operator deletes, so the incarnation read here is the
	// one deleted.
	var uid types.UID
	if cur, err := c.srv.base.Get(ctx, name, metav1.GetOptions{}); err == nil {
		uid = cur.UID
	}
	err := c.srv.base.Delete(ctx, name, opts)
	if err == nil {
		c.srv.sim.deleted(c.inst, name, uid)
	}
	if aerr := c.after(ctx, err == nil); aerr != nil {
		return aerr
	}
	return err
}

func (c *client) List(ctx context.Context, opts metav1.ListOptions) (*coordinationv1.LeaseList, error) {
	if err := c.before(ctx, "list", ""); err != nil {
		return nil, err
	}
	l, err := c.srv.base.List(ctx, opts)
	if aerr := c.after(ctx, false); aerr != nil {
		return nil, aerr
	}
	if err == nil {
		for i := range l.Items {
			c.inst.saw(&l.Items[i])
		}
	}
	return l, err
}

func (c *client) DeleteCollection(ctx context.Context, opts metav1.DeleteOptions, listOpts metav1.ListOptions) error {
	return c.srv.base.DeleteCollection(ctx, opts, listOpts)
}

func (c *client) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) (*coordinationv1.Lease, error) {
	return c.srv.base.Patch(ctx, name, pt, data, opts, sub...)
}

func (c *client) Apply(ctx context.Context, l *applycoordinationv1.LeaseApplyConfiguration, opts metav1.ApplyOptions) (*coordinationv1.Lease, error) {
	return c.srv.base.Apply(ctx, l, opts)
}

// Watch opens a stream through the fault layer: it may fail to open (5xx,
// or 410 when resuming), and once open it lags, may end early (the client
// resumes from its last resourceVersion), may end with a 410 error event,
// may hang silently for ever, and sends a bookmark about once a minute
// while healthy.
func (c *client) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	s := c.srv.sim
	if err := c.before(ctx, "watch", ""); err != nil {
		return nil, err
	}
	if opts.ResourceVersion != "" && s.faulty() && s.chance(s.cfg.watchGone) {
		return nil, apierrors.NewResourceExpired("too old resource version: " + opts.ResourceVersion)
	}
	wctx, cancel := context.WithCancel(ctx)
	inner, err := c.srv.base.Watch(wctx, opts)
	if err != nil {
		cancel()
		return nil, err
	}
	w := &stream{
		c: c, inner: inner, cancel: cancel, bookmarks: opts.AllowWatchBookmarks,
		out: make(chan watch.Event), stop: make(chan struct{}),
	}
	if s.faulty() {
		w.lag = c.inst.node.lag
		if s.chance(s.cfg.watchHang) {
			w.hangAfter = s.dur(time.Second, 30*time.Second)
		}
		if s.chance(s.cfg.watchDrop) {
			w.dropAfter = s.dur(time.Second, 60*time.Second)
			w.dropGone = s.chance(0.3)
		}
	}
	if opts.TimeoutSeconds != nil {
		w.timeout = time.Duration(*opts.TimeoutSeconds) * time.Second
	}
	go w.pump()
	return w, nil
}

// stream is one watch through the fault layer.
type stream struct {
	c         *client
	inner     watch.Interface
	cancel    context.CancelFunc
	bookmarks bool
	lag       time.Duration // each event is delayed by up to lag
	hangAfter time.Duration // > 0: after this, deliver nothing, never end
	dropAfter time.Duration // > 0: after this, end the stream
	dropGone  bool          // end it with a 410 error event
	timeout   time.Duration // the server ends the watch after this

	out  chan watch.Event
	stop chan struct{}
	once sync.Once
	rv   string // of the last event delivered
}

func (w *stream) Stop() {
	w.once.Do(func() {
		close(w.stop)
		w.cancel()
	})
}

func (w *stream) ResultChan() <-chan watch.Event { return w.out }

func (w *stream) pump() {
	defer close(w.out)
	defer w.inner.Stop()
	s := w.c.srv.sim
	start := time.Now()
	var hang, drop, end <-chan time.Time
	if w.hangAfter > 0 {
		t := time.NewTimer(w.hangAfter)
		defer t.Stop()
		hang = t.C
	}
	if w.dropAfter > 0 {
		t := time.NewTimer(w.dropAfter)
		defer t.Stop()
		drop = t.C
	}
	if w.timeout > 0 {
		t := time.NewTimer(w.timeout)
		defer t.Stop()
		end = t.C
	}
	bookmark := time.NewTicker(s.dur(40*time.Second, 60*time.Second))
	defer bookmark.Stop()
	in := w.inner.ResultChan()
	for {
		select {
		case <-w.stop:
			return
		case <-hang:
			// Hung: a connection the network black-holed. Nothing more
			// arrives, not even the end, until the client stops it.
			s.trace(w.c.inst, "watch hangs after %v", time.Since(start).Round(time.Millisecond))
			<-w.stop
			return
		case <-drop:
			if w.dropGone {
				w.send(watch.Event{Type: watch.Error, Object: &apierrors.NewResourceExpired("too old resource version").ErrStatus})
			}
			return
		case <-end:
			return
		case <-bookmark.C:
			if w.bookmarks && w.rv != "" && !w.c.inst.partitioned() {
				w.send(watch.Event{Type: watch.Bookmark, Object: &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{ResourceVersion: w.rv}}})
			}
		case ev, ok := <-in:
			if !ok {
				return
			}
			lag := w.lag
			if s.cfg.slowCoord && s.faulty() && s.coordinator() == w.c.inst.node {
				lag = slowLag // a slow coordinator: its view lags the table that others write
			}
			if lag > 0 && s.faulty() {
				if d := s.dur(0, lag); d > 0 {
					t := time.NewTimer(d)
					select {
					case <-t.C:
					case <-w.stop:
						t.Stop()
						return
					}
				}
			} else {
				time.Sleep(time.Millisecond)
			}
			if w.c.inst.dead() || w.c.inst.partitioned() {
				return // the connection broke
			}
			l, _ := ev.Object.(*coordinationv1.Lease)
			if l != nil {
				w.rv = l.ResourceVersion
			}
			if !w.send(ev) {
				return
			}
			// Seen once the client took it, not before: a stream
			// the client stopped delivered nothing.
			if l != nil && ev.Type != watch.Deleted {
				w.c.inst.saw(l)
			}
		}
	}
}

func (w *stream) send(ev watch.Event) bool {
	select {
	case w.out <- ev:
		return true
	case <-w.stop:
		return false
	}
}
