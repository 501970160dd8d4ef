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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/elector-dev/elector"
	"github.com/elector-dev/elector/internal/rbac"
	"github.com/elector-dev/elector/shard"
)

// envShard is the shard number given to the command in the sharded mode,
// beside ELECTOR_TOKEN (the shard's fencing token).
const envShard = "ELECTOR_SHARD"

// shardsPoll is how often /watch looks at the shards that run here: a
// function starts or stops shortly after the change of the Leases that
// caused it.
const shardsPoll = 250 * time.Millisecond

// runShards is the sharded mode (--shards=K): the replica takes part in
// the group named by --election (package shard), runs the command once
// per shard it owns, and serves /shards.
func (a *app) runShards(ctx context.Context, kc *clients, reg *prometheus.Registry, p ports) int {
	c := a.cfg
	s, err := shard.New(shard.Config{
		Leases:        kc.Leases(c.namespace),
		Namespace:     c.namespace,
		Group:         c.election,
		Identity:      c.identity,
		Shards:        c.shards,
		LeaseDuration: c.leaseDuration,
		RenewDeadline: c.renewDeadline,
		RetryPeriod:   c.retryPeriod,
		StopGrace:     c.stopGrace,
		Clock:         a.clock,
		Logger:        a.log,
		Registerer:    reg,
	})
	if err != nil {
		return fail(a.stderr, configf("%s", oneLine(err)))
	}
	if a.start == nil {
		a.start = newStartup()
	}
	a.start.setWaiting("starting")
	if p.any() {
		base := &handlers{identity: c.identity, gatherer: reg, clock: a.clock, waiting: a.start.waiting}
		base.maxWatchers, base.registerer = c.maxWatchers, reg
		base.probeAddr, base.metricsAddr = c.probeAddr, c.metricsAddr
		h := &shardHandlers{s: s, base: base}
		stop := a.serveAll(p, h.mux(), base.probesMux(h.healthz, h.readyz), base.metricsMux())
		defer stop()
	}

	var code int
	var ok bool
	if a.subject, code, ok = a.identify(ctx, kc); !ok {
		return code
	}
	a.log.Info("Starting", "group", c.namespace+"/"+c.election, "shards", c.shards, "identity", c.identity,
		"user", a.subject.Username(), "server", kc.host, "leaseDuration", c.leaseDuration.String(),
		"renewDeadline", c.renewDeadline.String(), "retryPeriod", c.retryPeriod.String(), "command", c.command)
	if c.skipPermissionCheck {
		a.log.Info("Skipping permission check")
	} else if code, ok = a.checkPermissions(ctx, kc, requiredPermissions(c)); !ok {
		return code
	}
	a.start.setWaiting("")

	var super *supervisor
	if len(c.command) > 0 {
		self, err := os.Executable()
		if err != nil {
			return fail(a.stderr, fmt.Errorf("unable to find own executable for the watchdog: %w", err))
		}
		super = &supervisor{
			command: c.command, self: self, logFormat: c.logFormat, lease: c.namespace + "/" + c.election,
			grace: c.grace, heartbeat: c.heartbeat, deadline: s.Deadline, clock: a.clock,
			stdout: a.stdout, stderr: a.stderr, log: a.log,
		}
	}
	err = s.Run(ctx, func(ctx context.Context, i int, term elector.Term) error {
		if super == nil {
			<-ctx.Done()
			return nil
		}
		// One watchdog and command per shard; a command that exits while
		// the shard is still owned here is started again (package shard).
		sup := *super
		sup.log = a.log.With("shard", i)
		sup.env = []string{envShard + "=" + strconv.Itoa(i)}
		return sup.run(ctx, term)
	})
	var fe *elector.ForbiddenError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &fe):
		a.printForbidden(fe.Namespace, fe.User, fe.Verb, rbac.SharedLeaseRules(), err)
		return ExitForbidden
	case errors.Is(err, elector.ErrStopOverrun):
		a.log.Error("Shard work did not stop before the renew deadline; exiting", "error", err)
		return ExitOverrun
	case errors.Is(err, shard.ErrShardCountMismatch):
		return fail(a.stderr, configf("--shards=%d: %s", c.shards, oneLine(err)))
	default:
		a.log.Error("Sharded group failed", "error", err)
		return ExitFailure
	}
}

// shardHandlers serves the HTTP endpoints of the sharded mode, within the
// limits of the handlers it wraps.
type shardHandlers struct {
	s    *shard.Shards
	base *handlers // limits, metrics, the start-up state
}

func (h *shardHandlers) mux() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("/", h.shards)
	m.HandleFunc("/shards", h.shards)
	m.HandleFunc("/watch", h.watch)
	h.base.probeRoutes(m, h.healthz, h.readyz)
	h.base.metricsRoutes(m)
	return h.base.limited(m)
}

// shardsJSON is the body of /shards and the data of "shards" events.
type shardsJSON struct {
	shard.Assignment
	// Error says what keeps this replica from taking part normally;
	// omitted when all is well.
	Error string `json:"error,omitempty"`
	Fix   string `json:"fix,omitempty"`
}

func (h *shardHandlers) body() []byte {
	v := shardsJSON{Assignment: h.s.Assignment()}
	if h.base.waiting != nil {
		v.Error = h.base.waiting()
	}
	if err := h.s.Err(); v.Error == "" && err != nil {
		v.Error = oneLine(err)
		var fe *elector.ForbiddenError
		if errors.As(err, &fe) {
			v.Fix = fe.Fix
		}
	}
	b, _ := json.Marshal(v)
	return b
}

func (h *shardHandlers) shards(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(h.body())
}

func (h *shardHandlers) healthz(w http.ResponseWriter, r *http.Request) {
	if err := h.s.Check(r); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = fmt.Fprintln(w, "ok")
}

// readyz is ready once the group's Leases have been read, and stays so
// (as /readyz of one election).
func (h *shardHandlers) readyz(w http.ResponseWriter, _ *http.Request) {
	if !h.s.Synced() {
		msg := "group not read yet"
		if h.base.waiting != nil && h.base.waiting() != "" {
			msg += ": " + h.base.waiting()
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	_, _ = fmt.Fprintln(w, "ok")
}

// watch streams Server-Sent Events: the assignment at once, then one
// "shards" event per change (of any owner, token or handoff, or of the
// shards running here), and a comment every sseHeartbeat; the limits of
// /watch of one election apply.
func (h *shardHandlers) watch(w http.ResponseWriter, r *http.Request) {
	if _, ok := w.(http.Flusher); !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	if !h.base.acquireWatcher() {
		h.base.refuseWatch(w)
		return
	}
	defer h.base.releaseWatcher()
	rc := http.NewResponseController(w)
	send := func(s string) error {
		if err := rc.SetWriteDeadline(time.Now().Add(h.base.watchWriteDeadline())); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := io.WriteString(w, s); err != nil {
			return err
		}
		return rc.Flush()
	}
	ctx := r.Context()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if send("") != nil {
		return
	}
	changed, stop := h.s.Changes()
	defer stop()
	tick := h.base.clock.NewTicker(sseHeartbeat)
	defer tick.Stop()
	poll := h.base.clock.NewTicker(shardsPoll)
	defer poll.Stop()
	last := ""
	event := func() string {
		data := string(h.body())
		if data == last {
			return ""
		}
		last = data
		return "event: shards\ndata: " + data + "\n\n"
	}
	msg := event()
	for {
		if msg != "" && send(msg) != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
			msg = event()
		case <-poll.C():
			msg = event()
		case <-tick.C():
			msg = ": heartbeat\n\n"
		}
	}
}
