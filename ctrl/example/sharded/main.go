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

// Command sharded is a small operator scaled out with elector's sharded
// mode (ctrl.NewShardedManager): every replica reconciles only the
// ConfigMaps (of one namespace, carrying the label --label) whose UID
// hashes into the shards it owns, and its caches hold only those, listed
// and watched with the API server's shardSelector (KEP-5866; filtered on
// this side when the API server does not apply it).
//
// Its reconciler stands for one that does I/O: it waits --work, at most
// --workers reconciles at a time on this replica, then (with --write)
// writes three annotations on the ConfigMap: the replica that reconciled
// it, the shard's fencing token, and the data["version"] it saw, so that
// anyone can check that every object was reconciled to its latest
// version.
//
// The end-to-end tests and the benchmark run it as several replicas:
// with --record each reconcile appends "identity shard token
// namespace/name uid version start end" (Unix nanoseconds) to the file;
// with --lock-dir it holds an exclusive flock(2) on a file per object
// while it works, and records a CONTENDED line when another replica holds
// it, so that two owners of one object would show. --plain runs one
// leader of plain controller-runtime instead (every object, one
// replica), and --filter-of N --filter-index I every replica watching
// everything and dropping all but the I-th of N equal hash ranges (as
// Knative's buckets do): the two baselines of the benchmark.
//
// Exit codes: 0 after SIGTERM or SIGINT, 1 on other errors, 2 on bad
// flags.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	electorctrl "github.com/elector-dev/elector/ctrl"
)

// Exit codes.
const (
	exitError = 1
	exitUsage = 2
)

// The annotations the reconciler writes.
const (
	AnnotationOwner    = "example.elector.dev/owner"
	AnnotationToken    = "example.elector.dev/token"
	AnnotationObserved = "example.elector.dev/observed-version"
	// DataVersion is the key of the ConfigMap's data that the
	// reconciler reports as observed.
	DataVersion = "version"
)

// noToken is recorded by reconciles that have no term (the baselines).
const noToken = -1

func main() { os.Exit(run(os.Args[1:])) }

type flags struct {
	kubeconfig, id, namespace, group, label string
	shards, workers                         int
	work                                    time.Duration
	write, plain                            bool
	filterOf, filterIndex                   int
	leaseDuration, renew, retry             time.Duration
	recordFile, lockDir, startFile          string
	probeAddr, metricsAddr                  string
}

func parse(args []string) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("sharded", flag.ContinueOnError)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file; default: $KUBECONFIG, else in-cluster")
	fs.StringVar(&f.id, "id", os.Getenv("POD_NAME"), "this replica's identity in the shard group")
	fs.StringVar(&f.namespace, "namespace", os.Getenv("POD_NAMESPACE"), "namespace of the ConfigMaps and of the group's Leases")
	fs.StringVar(&f.group, "group", "example-sharded", "the shard group's name (its Leases are named after it)")
	fs.StringVar(&f.label, "label", "example.elector.dev/sharded", "reconcile the ConfigMaps that carry this label (any value)")
	fs.IntVar(&f.shards, "shards", 8, "K, the number of hash ranges; the same on every replica")
	fs.IntVar(&f.workers, "workers", 4, "reconciles at a time on this replica (the simulated I/O's concurrency)")
	fs.DurationVar(&f.work, "work", 20*time.Millisecond, "simulated I/O latency of one reconcile")
	fs.BoolVar(&f.write, "write", true, "write the owner, token and observed-version annotations")
	fs.BoolVar(&f.plain, "plain", false, "baseline: one leader of plain controller-runtime reconciles every object")
	fs.IntVar(&f.filterOf, "filter-of", 0, "baseline: watch every object and reconcile only hash range --filter-index of this many (no coordination)")
	fs.IntVar(&f.filterIndex, "filter-index", 0, "the range this replica reconciles with --filter-of")
	fs.DurationVar(&f.leaseDuration, "lease-duration", 15*time.Second, "LeaseDuration")
	fs.DurationVar(&f.renew, "renew-deadline", 10*time.Second, "RenewDeadline")
	fs.DurationVar(&f.retry, "retry-period", 2*time.Second, "RetryPeriod")
	fs.StringVar(&f.recordFile, "record", "", "append every reconcile to this file (optional)")
	fs.StringVar(&f.lockDir, "lock-dir", "", "hold a flock on a file per object in this directory while reconciling (optional)")
	fs.StringVar(&f.startFile, "start-file", "", "reconciles wait until this file exists (a benchmark starts every replica's work at one instant) (optional)")
	fs.StringVar(&f.probeAddr, "probe-addr", "127.0.0.1:8081", "health probe address (/healthz, /readyz)")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "0", "metrics address (/metrics); 0 for none")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	switch {
	case f.id == "":
		return f, errors.New("--id (or $POD_NAME) is required")
	case f.namespace == "":
		return f, errors.New("--namespace (or $POD_NAMESPACE) is required")
	case f.workers < 1:
		return f, fmt.Errorf("--workers=%d: must be at least 1", f.workers)
	case f.filterOf < 0 || f.filterIndex < 0 || (f.filterOf > 0 && f.filterIndex >= f.filterOf):
		return f, fmt.Errorf("--filter-index=%d --filter-of=%d: want 0 <= index < of", f.filterIndex, f.filterOf)
	case f.plain && f.filterOf > 0:
		return f, errors.New("--plain and --filter-of are two different baselines: choose one")
	}
	return f, nil
}

func run(args []string) int {
	f, err := parse(args)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "sharded: %v\n", err)
		}
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("id", f.id)
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	if err := operate(ctrl.SetupSignalHandler(), f, log); err != nil {
		log.Error("Operator failed", "error", err)
		return exitError
	}
	log.Info("Stopped")
	return 0
}

func operate(ctx context.Context, f flags, log *slog.Logger) error {
	var cfg *rest.Config
	var err error
	if f.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	} else {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return fmt.Errorf("unable to load a kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	rec, err := newReconciler(f)
	if err != nil {
		return err
	}
	defer rec.close()

	labelled, err := labels.NewRequirement(f.label, selection.Exists, nil)
	if err != nil {
		return fmt.Errorf("--label=%q: %w", f.label, err)
	}
	opts := ctrl.Options{
		Cache: cache.Options{
			DefaultNamespaces: map[string]cache.Config{f.namespace: {}},
			ByObject:          map[client.Object]cache.ByObject{&corev1.ConfigMap{}: {Label: labels.NewSelector().Add(*labelled)}},
		},
		Metrics:                metricsserver.Options{BindAddress: f.metricsAddr},
		HealthProbeBindAddress: f.probeAddr,
	}
	workers := controller.Options{MaxConcurrentReconciles: f.workers, SkipNameValidation: ptr(true)}

	var mgr manager.Manager
	switch {
	case f.plain, f.filterOf > 0:
		if f.plain {
			opts.LeaderElection = true
			opts.LeaderElectionID = f.group
			opts.LeaderElectionNamespace = f.namespace
			opts.LeaderElectionReleaseOnCancel = true
			opts.LeaseDuration, opts.RenewDeadline, opts.RetryPeriod = &f.leaseDuration, &f.renew, &f.retry
		}
		if mgr, err = ctrl.NewManager(cfg, opts); err != nil {
			return fmt.Errorf("unable to create the manager: %w", err)
		}
		b := ctrl.NewControllerManagedBy(mgr).For(&corev1.ConfigMap{}).WithOptions(workers)
		rec := rec.with(mgr.GetClient())
		if f.filterOf > 0 {
			r, err := electorctrl.NewRange(electorctrl.ShardByUID, f.filterIndex, f.filterOf)
			if err != nil {
				return err
			}
			b = b.WithEventFilter(inRange(r))
		}
		if err := b.Complete(rec); err != nil {
			return fmt.Errorf("unable to create the controller: %w", err)
		}
	default:
		// The sharded operator: the controllers are registered per owned
		// shard, in that shard's own manager.
		sm, err := electorctrl.NewShardedManager(cfg, opts, electorctrl.ShardedOptions{
			Group: f.group, Shards: f.shards, Namespace: f.namespace, Identity: f.id,
			LeaseDuration: f.leaseDuration, RenewDeadline: f.renew, RetryPeriod: f.retry,
		}, func(m manager.Manager, r electorctrl.Range) error {
			// m's client reads from the shard's cache: only its range.
			return ctrl.NewControllerManagedBy(m).For(&corev1.ConfigMap{}).WithOptions(workers).Complete(rec.with(m.GetClient()))
		})
		if err != nil {
			return fmt.Errorf("unable to create the sharded manager: %w", err)
		}
		mgr = sm
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	log.Info("Starting the manager", "shards", f.shards, "plain", f.plain, "filterOf", f.filterOf)
	return mgr.Start(ctx)
}

// inRange keeps the events of the objects in r: every replica receives
// every event and drops the others' (the Knative-style baseline).
func inRange(r electorctrl.Range) predicate.Predicate {
	keep := func(o client.Object) bool {
		ok, err := r.Matches(o)
		return err == nil && ok
	}
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return keep(e.Object) },
		UpdateFunc:  func(e event.UpdateEvent) bool { return keep(e.ObjectNew) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return keep(e.Object) },
		GenericFunc: func(e event.GenericEvent) bool { return keep(e.Object) },
	}
}

func ptr[T any](v T) *T { return &v }

// reconciler simulates I/O and reports what it saw; it is shared by the
// controllers of every shard this replica owns.
type reconciler struct {
	f       flags
	slots   chan struct{} // the replica's I/O concurrency
	started chan struct{} // closed once --start-file exists

	mu     sync.Mutex
	record *os.File
	buf    *bufio.Writer
	flush  *time.Ticker
	done   chan struct{}
}

func newReconciler(f flags) (*reconciler, error) {
	r := &reconciler{f: f, slots: make(chan struct{}, f.workers), started: make(chan struct{}), done: make(chan struct{})}
	if f.startFile == "" {
		close(r.started)
	} else {
		go r.waitStart()
	}
	if f.recordFile != "" {
		file, err := os.OpenFile(f.recordFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("unable to open the record: %w", err)
		}
		r.record, r.buf = file, bufio.NewWriter(file)
		// Lines reach the file within 100 ms, whole.
		r.flush = time.NewTicker(100 * time.Millisecond)
		go func() {
			for {
				select {
				case <-r.done:
					return
				case <-r.flush.C:
					r.mu.Lock()
					_ = r.buf.Flush()
					r.mu.Unlock()
				}
			}
		}()
	}
	if f.lockDir != "" {
		if err := os.MkdirAll(f.lockDir, 0o755); err != nil {
			return nil, fmt.Errorf("unable to create the lock directory: %w", err)
		}
	}
	return r, nil
}

// waitStart closes r.started once the start file exists.
func (r *reconciler) waitStart() {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := os.Stat(r.f.startFile); err == nil {
			close(r.started)
			return
		}
		select {
		case <-r.done:
			return
		case <-t.C:
		}
	}
}

func (r *reconciler) close() {
	close(r.done)
	if r.record == nil {
		return
	}
	r.flush.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.buf.Flush()
	_ = r.record.Close()
}

// bound is the reconciler with the client of one manager.
type bound struct {
	*reconciler
	c client.Client
}

func (r *reconciler) with(c client.Client) bound { return bound{r, c} }

func (b bound) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	r, c := b.reconciler, b.c
	token, shard := int64(noToken), -1
	if term, ok := electorctrl.TermFrom(ctx); ok {
		token = int64(term.Token)
	}
	if rg, ok := electorctrl.RangeFrom(ctx); ok {
		shard = rg.Index
	}
	var cm corev1.ConfigMap
	if err := c.Get(ctx, req.NamespacedName, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil // deleted: nothing to do
		}
		return ctrl.Result{}, fmt.Errorf("unable to get %s: %w", req, err)
	}
	select {
	case <-r.started:
	case <-ctx.Done():
		return ctrl.Result{}, ctx.Err()
	}
	if r.f.lockDir != "" {
		unlock, err := r.lock(string(cm.UID))
		if err != nil {
			return ctrl.Result{}, err
		}
		defer unlock()
	}
	start := time.Now()
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return ctrl.Result{}, ctx.Err()
	}
	t := time.NewTimer(r.f.work)
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	<-r.slots
	version := cm.Data[DataVersion]
	if r.f.write && ctx.Err() == nil {
		want := map[string]string{AnnotationOwner: r.f.id, AnnotationToken: fmt.Sprint(token), AnnotationObserved: version}
		if !hasAll(cm.Annotations, want) {
			patch := client.MergeFrom(cm.DeepCopy())
			if cm.Annotations == nil {
				cm.Annotations = map[string]string{}
			}
			for k, v := range want {
				cm.Annotations[k] = v
			}
			if err := c.Patch(ctx, &cm, patch); err != nil {
				if apierrors.IsNotFound(err) {
					return ctrl.Result{}, nil
				}
				return ctrl.Result{}, fmt.Errorf("unable to annotate %s: %w", req, err)
			}
		}
	}
	end := time.Now()
	r.append(fmt.Sprintf("%s %d %d %s/%s %s %q %d %d\n", r.f.id, shard, token, cm.Namespace, cm.Name, cm.UID, version, start.UnixNano(), end.UnixNano()))
	return ctrl.Result{}, ctx.Err()
}

// lock takes the object's flock, recording CONTENDED first if another
// process holds it.
func (r *reconciler) lock(uid string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(r.f.lockDir, uid), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("unable to open the lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		r.append(fmt.Sprintf("%s CONTENDED %s %d\n", r.f.id, uid, time.Now().UnixNano()))
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("unable to lock: %w", err)
		}
	}
	// Closing the file releases the lock.
	return func() { f.Close() }, nil
}

func (r *reconciler) append(line string) {
	if r.buf == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.buf.WriteString(line)
}

func hasAll(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
