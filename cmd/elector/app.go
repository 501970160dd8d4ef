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

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/migrate"
)

// shutdownTimeout bounds the HTTP server's and the Event recorder's
// shutdown, well inside Kubernetes' default 30s termination grace period.
const shutdownTimeout = 5 * time.Second

// app is one run of the sidecar.
type app struct {
	cfg            config
	log            *slog.Logger
	stdout, stderr io.Writer
	clock          clock.WithTicker

	subject rbac.Subject  // who we are, for permission messages
	rec     *recorder     // nil: no Events
	label   *labeler      // nil: no --leader-label
	super   *supervisor   // nil: no command
	start   *startup      // nil: the defaults
	old     *migrate.Lock // nil: no --migrate-from
	// handoffs passes the Elector's HandedOff moments to rec.
	handoffs handoffEvents
}

// deadline is by when the leader's command must be dead: the Elector's
// deadline and, in migration mode, the old lock's, whichever comes first.
func (a *app) deadline(e *elector.Elector) func() (time.Time, bool) {
	if a.old == nil {
		return e.Deadline
	}
	return func() (time.Time, bool) {
		d, ok := e.Deadline()
		if od, ook := a.old.Deadline(); ook && (!ok || od.Before(d)) {
			return od, ok
		}
		return d, ok
	}
}

func (a *app) run(ctx context.Context) int {
	c := a.cfg
	if a.clock == nil {
		a.clock = clock.RealClock{}
	}

	// Listen first: a taken port fails at once, before any request.
	p, err := listen(c) // ports.go
	if err != nil {
		return fail(a.stderr, err)
	}
	defer p.close()

	rc, err := restConfig(c.kubeconfig)
	if err != nil {
		return fail(a.stderr, err)
	}
	reg := newRegistry() // metrics.go
	rc.Wrap(newAPIRequests(reg))
	kc, err := newClients(rc, c.kubeAPIQPS, c.kubeAPIBurst, a.log)
	if err != nil {
		return fail(a.stderr, err)
	}

	if c.shards > 0 {
		return a.runShards(ctx, kc, reg, p) // shards.go
	}
	e, err := elector.New(elector.Config{
		Leases:        kc.Leases(c.namespace),
		Namespace:     c.namespace,
		Name:          c.election,
		Identity:      c.identity,
		LeaseDuration: c.leaseDuration,
		RenewDeadline: c.renewDeadline,
		RetryPeriod:   c.retryPeriod,
		StopGrace:     c.stopGrace,
		Events:        &a.handoffs,
		Version:       currentVersion().Version,
		Clock:         a.clock,
		Logger:        a.log,
		Registerer:    reg,
	})
	if err != nil {
		return fail(a.stderr, configf("%s", oneLine(err)))
	}

	if c.migrateFrom != "" {
		a.old = &migrate.Lock{
			Client: kc.Objects(), Kind: migrate.Kind(c.migrateFrom), Namespace: c.migrateNamespace, Name: c.election,
			Identity: c.identity, LeaseDuration: c.leaseDuration, RenewDeadline: c.renewDeadline,
			RetryPeriod: c.retryPeriod, StopGrace: c.stopGrace, Clock: a.clock, Logger: a.log,
		}
		if err := a.old.Validate(); err != nil {
			return fail(a.stderr, configf("%s", oneLine(err)))
		}
	}

	// Serve HTTP before the first request to the API server: while it is
	// unreachable, GET / answers an empty name and /readyz says why.
	if a.start == nil {
		a.start = newStartup()
	}
	a.start.setWaiting("starting")
	if p.any() {
		h := &handlers{view: e, identity: c.identity, gatherer: reg, clock: a.clock, waiting: a.start.waiting}
		if a.old != nil {
			h.oldHolder = a.old.Holder
		}
		h.maxWatchers, h.registerer = c.maxWatchers, reg
		h.probeAddr, h.metricsAddr = c.probeAddr, c.metricsAddr
		stop := a.serveAll(p, h.mux(), h.probesMux(h.healthz, h.readyz), h.metricsMux())
		defer stop()
	}

	var code int
	var ok bool
	if a.subject, code, ok = a.identify(ctx, kc); !ok {
		return code
	}
	a.log.Info("Starting", "lease", c.namespace+"/"+c.election, "identity", c.identity,
		"user", a.subject.Username(), "server", kc.host, "leaseDuration", c.leaseDuration.String(),
		"renewDeadline", c.renewDeadline.String(), "retryPeriod", c.retryPeriod.String(), "command", c.command)

	if c.skipPermissionCheck {
		a.log.Info("Skipping permission check")
	} else if code, ok = a.checkPermissions(ctx, kc, requiredPermissions(c)); !ok {
		return code
	}
	a.start.setWaiting("")
	if a.old != nil {
		// Every replica follows the old lock, so that GET / names the
		// acting leader while old replicas run.
		octx, ocancel := context.WithCancel(ctx)
		observed := make(chan struct{})
		go func() {
			defer close(observed)
			a.old.Observe(octx)
		}()
		defer func() { ocancel(); <-observed }()
		a.log.Info("Migration mode: leading only while also holding the old lock", "oldLock", c.migrateFrom+"/"+c.migrateNamespace+"/"+c.election)
	}
	a.log.Info("Campaigning")

	if c.events {
		a.rec = newRecorder(kc.api, kc.Leases(c.namespace), c.namespace, c.election, c.identity, a.clock, a.log)
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			a.rec.close(ctx)
		}()
		a.handoffs.rec.Store(a.rec)
	}
	if c.labelKey != "" {
		a.label = &labeler{
			pods:      kc.api,
			namespace: c.podNamespace,
			self:      c.podName,
			key:       c.labelKey,
			value:     c.labelValue,
			retry:     c.retryPeriod,
			unmarkIn:  c.stopGrace / 2,
			clock:     a.clock,
			log:       a.log,
		}
	}
	if len(c.command) > 0 {
		self, err := os.Executable()
		if err != nil {
			return fail(a.stderr, fmt.Errorf("unable to find own executable for the watchdog: %w", err))
		}
		a.super = &supervisor{
			command:   c.command,
			self:      self,
			logFormat: c.logFormat,
			lease:     c.namespace + "/" + c.election,
			grace:     c.grace,
			heartbeat: c.heartbeat,
			deadline:  a.deadline(e),
			clock:     a.clock,
			stdout:    a.stdout,
			stderr:    a.stderr,
			log:       a.log,
		}
	}
	exit := a.campaign(ctx, e)
	if a.old != nil {
		// Guard releases the old lock after the tenure ended, within its
		// APITimeout: let it finish, so old replicas need not wait a lease.
		_ = a.old.Wait(context.Background())
	}
	return exit
}

// campaign runs tenures until one ends in a way that ends elector.
func (a *app) campaign(ctx context.Context, e *elector.Elector) int {
	for {
		var term atomic.Pointer[elector.Term]
		var fn elector.LeaderFunc = func(ctx context.Context, t elector.Term) error {
			term.Store(&t)
			err := a.lead(ctx, t)
			if errors.Is(context.Cause(ctx), elector.ErrHandedOff) {
				// A planned handoff: the Elector records HandedOff and
				// Run goes on as a follower; no StoppedLeading later.
				term.Store(nil)
			}
			return err
		}
		if a.old != nil {
			fn = a.old.Guard(fn) // lead only while holding the old lock too
		}
		err := e.Run(ctx, fn)
		if t := term.Load(); t != nil {
			a.rec.emit(reasonStoppedLeading, fmt.Sprintf("%s stopped leading (token %d): %s", a.cfg.identity, t.Token, stopReason(ctx, err, a.super != nil)))
		}
		code, again := a.outcome(ctx, err)
		if !again {
			return code
		}
	}
}

// lead is the leader function: it labels the Pod and runs the command
// (each when configured) until leadership ends, or until the command
// exits by itself. The own label is removed before it returns; its
// removal starts together with the command's SIGTERM.
func (a *app) lead(ctx context.Context, t elector.Term) error {
	a.rec.emit(reasonBecameLeader, fmt.Sprintf("%s became leader (token %d)", t.Identity, t.Token))
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	labelDone := make(chan struct{})
	if a.label != nil {
		go func() {
			defer close(labelDone)
			a.label.hold(lctx) // it retries every failure until lctx ends
		}()
	} else {
		close(labelDone)
	}

	var err error
	if a.super != nil {
		err = a.super.run(lctx, t)
	} else {
		<-lctx.Done()
	}
	cancel(nil) // the command exited by itself: unlabel
	<-labelDone
	return err
}

// stopReason says why a tenure ended, for the StoppedLeading Event.
func stopReason(ctx context.Context, err error, execMode bool) string {
	var ce *exitCodeError
	switch {
	case errors.As(err, &ce):
		return ce.Error()
	case err != nil:
		return err.Error()
	case ctx.Err() != nil:
		return "shutting down"
	case execMode:
		return "command exited with code 0"
	default:
		return "leader work ended"
	}
}

// outcome maps the end of a tenure (or of a campaign) to an exit code, or
// to campaigning again.
func (a *app) outcome(ctx context.Context, err error) (code int, again bool) {
	var (
		fe *elector.ForbiddenError
		ce *exitCodeError
	)
	switch {
	case errors.As(err, &fe):
		// Only at start: an Elector that has had access retries denials.
		a.printForbidden(fe.Namespace, fe.User, fe.Verb, rbac.LeaseRules(a.cfg.election), err)
		return ExitForbidden, false
	case errors.Is(err, elector.ErrStopOverrun):
		a.log.Error("Leader work did not stop before the renew deadline; exiting", "error", err)
		return ExitOverrun, false
	case errors.Is(err, elector.ErrLeadershipLost), errors.Is(err, migrate.ErrLockLost):
		switch {
		case ctx.Err() != nil:
			return ExitOK, false
		case a.super != nil:
			a.log.Error("Leadership lost; command stopped", "reason", err)
			return ExitLost, false
		}
		a.log.Warn("Leadership lost; campaigning again", "reason", err)
		return ExitOK, true
	case errors.As(err, &ce):
		return ce.code, false
	case err != nil:
		a.log.Error("Election failed", "error", err)
		return ExitFailure, false
	case ctx.Err() != nil, a.super != nil:
		return ExitOK, false
	default:
		return ExitOK, true
	}
}

// printForbidden reports a 403 seen at runtime like a failed start check:
// one summary line, then the Role to grant. rules are those of the feature
// that was denied; only those with the denied verb are listed when known.
func (a *app) printForbidden(namespace, user, verb string, rules []rbac.Rule, err error) {
	a.log.Error("Permission denied", "error", err)
	subject := a.subject
	if user != "" {
		subject = rbac.SubjectFromUsername(user)
	}
	var missing []rbac.Rule
	for _, r := range rules {
		if r.Verb == verb {
			missing = append(missing, r)
		}
	}
	if len(missing) == 0 {
		missing = rules
	}
	printMissing(a.stderr, subject, namespace, missing, roleName(a.cfg.election))
}

// listenErr keeps the reason of a failed listen, such as "address already
// in use".
func listenErr(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}
