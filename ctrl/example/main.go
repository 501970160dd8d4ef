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

// Command example is a small operator whose manager runs its leader
// election with elector: the switch from plain controller-runtime is the
// one line marked below. It reconciles the ConfigMaps of one namespace,
// and serves a webhook and health probes on every replica.
//
// The end-to-end tests and the benchmark run it as two replicas: each
// reconcile holds an exclusive flock(2) on a shared file while it works
// and appends "identity token start end" (Unix nanoseconds) to a shared
// record, so that overlapping leaders would show. --plain runs the same
// operator on controller-runtime's own election, for mixed pairs.
//
// Exit codes: 0 after SIGTERM or SIGINT or a planned handoff, 1 on other errors, 2 on bad flags,
// 3 when this replica lost the Lease.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/elector-dev/elector"
	electorctrl "github.com/elector-dev/elector/ctrl"
)

// Exit codes.
const (
	exitError = 1
	exitUsage = 2
	exitLost  = 3
)

// noToken is recorded by reconciles that have no term (plain
// controller-runtime).
const noToken = -1

func main() { os.Exit(run(os.Args[1:])) }

type flags struct {
	kubeconfig           string
	id, namespace, lease string
	plain, release       bool
	leaseDuration, renew time.Duration
	retry, work, requeue time.Duration
	lockFile, recordFile string
	webhookPort          int
	certDir, probeAddr   string
}

func parse(args []string) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file; default: $KUBECONFIG, else in-cluster")
	fs.StringVar(&f.id, "id", os.Getenv("POD_NAME"), "this replica's name in the record, and its identity in the Lease (elector only)")
	fs.StringVar(&f.namespace, "namespace", os.Getenv("POD_NAMESPACE"), "namespace of the ConfigMaps and the Lease")
	fs.StringVar(&f.lease, "lease", "example-operator", "LeaderElectionID: the Lease's name")
	fs.BoolVar(&f.plain, "plain", false, "use controller-runtime's own leader election instead of elector")
	fs.BoolVar(&f.release, "release-on-cancel", true, "LeaderElectionReleaseOnCancel")
	fs.DurationVar(&f.leaseDuration, "lease-duration", 15*time.Second, "LeaseDuration")
	fs.DurationVar(&f.renew, "renew-deadline", 10*time.Second, "RenewDeadline")
	fs.DurationVar(&f.retry, "retry-period", 2*time.Second, "RetryPeriod")
	fs.DurationVar(&f.work, "work", 20*time.Millisecond, "how long each reconcile holds the lock")
	fs.DurationVar(&f.requeue, "requeue", 50*time.Millisecond, "reconcile each ConfigMap again after this long")
	fs.StringVar(&f.lockFile, "lock", "", "file to flock while reconciling (required)")
	fs.StringVar(&f.recordFile, "record", "", "file to append reconciles to (required)")
	fs.IntVar(&f.webhookPort, "webhook-port", 0, "webhook server port, 0 for none (needs --cert-dir)")
	fs.StringVar(&f.certDir, "cert-dir", "", "directory with the webhook server's tls.crt and tls.key")
	fs.StringVar(&f.probeAddr, "probe-addr", "127.0.0.1:8081", "health probe address (/healthz, /readyz)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	switch {
	case f.id == "":
		return f, errors.New("--id (or $POD_NAME) is required")
	case f.namespace == "":
		return f, errors.New("--namespace (or $POD_NAMESPACE) is required")
	case f.lockFile == "" || f.recordFile == "":
		return f, errors.New("--lock and --record are required")
	case f.webhookPort != 0 && f.certDir == "":
		return f, errors.New("--webhook-port needs --cert-dir")
	}
	return f, nil
}

func run(args []string) int {
	f, err := parse(args)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "example: %v\n", err)
		}
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("id", f.id)
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	err = operate(ctrl.SetupSignalHandler(), f, log)
	if errors.Is(err, elector.ErrHandedOff) {
		// A planned handoff: restart to campaign again.
		err = nil
	}
	if err != nil {
		if errors.Is(err, elector.ErrLeadershipLost) || strings.Contains(err.Error(), "leader election lost") {
			log.Error("Lost the Lease", "error", err)
			return exitLost
		}
		log.Error("Operator failed", "error", err)
		return exitError
	}
	log.Info("Stopped")
	return 0
}

func operate(ctx context.Context, f flags, log *slog.Logger) error {
	cfg, err := ctrl.GetConfig()
	if f.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	}
	if err != nil {
		return fmt.Errorf("unable to load a kubeconfig: %w", err)
	}
	opts := ctrl.Options{
		LeaderElection:                true,
		LeaderElectionID:              f.lease,
		LeaderElectionNamespace:       f.namespace,
		LeaderElectionReleaseOnCancel: f.release,
		LeaseDuration:                 &f.leaseDuration,
		RenewDeadline:                 &f.renew,
		RetryPeriod:                   &f.retry,
		Cache:                         cache.Options{DefaultNamespaces: map[string]cache.Config{f.namespace: {}}},
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        f.probeAddr,
		WebhookServer:                 webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: f.webhookPort, CertDir: f.certDir}),
	}

	newManager := func(cfg *rest.Config, opts ctrl.Options) (ctrl.Manager, error) {
		// The one-line switch: this was ctrl.NewManager(cfg, opts).
		return electorctrl.NewManager(cfg, opts, electorctrl.WithIdentity(f.id))
	}
	if f.plain {
		newManager = ctrl.NewManager
	}
	mgr, err := newManager(cfg, opts)
	if err != nil {
		return fmt.Errorf("unable to create the manager: %w", err)
	}

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if !f.plain {
		if err := electorctrl.AddHealthChecks(mgr); err != nil {
			return err
		}
	}
	if f.webhookPort != 0 {
		mgr.GetWebhookServer().Register("/ping", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintln(w, "pong")
		}))
	}
	r := &reconciler{f: f}
	// Warm-up starts the controller's watches on every replica before it
	// leads, so that a new leader reconciles at once instead of listing
	// first.
	if err := ctrl.NewControllerManagedBy(mgr).For(&corev1.ConfigMap{}).
		WithOptions(controller.Options{EnableWarmup: ptr.To(true)}).Complete(r); err != nil {
		return fmt.Errorf("unable to create the controller: %w", err)
	}
	log.Info("Starting the manager", "elector", !f.plain)
	return mgr.Start(ctx)
}

// reconciler records every reconcile under an exclusive flock.
type reconciler struct{ f flags }

func (r *reconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	token := int64(noToken)
	if term, ok := electorctrl.TermFrom(ctx); ok {
		token = int64(term.Token)
	}
	lock, err := os.OpenFile(r.f.lockFile, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("unable to open the lock file: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		// Another replica reconciles right now: two leaders.
		if err := appendRecord(r.f.recordFile, fmt.Sprintf("%s CONTENDED %d\n", r.f.id, time.Now().UnixNano())); err != nil {
			return ctrl.Result{}, err
		}
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
			return ctrl.Result{}, fmt.Errorf("unable to lock: %w", err)
		}
	}
	// Closing the file (deferred above) releases the lock too.
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	start := time.Now()
	time.Sleep(r.f.work)
	end := time.Now()
	if err := appendRecord(r.f.recordFile, fmt.Sprintf("%s %d %d %d\n", r.f.id, token, start.UnixNano(), end.UnixNano())); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.f.requeue}, nil
}

func appendRecord(path, line string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("unable to open the record: %w", err)
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("unable to append to the record: %w", err)
	}
	return f.Close()
}
