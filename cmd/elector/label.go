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
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"

	"github.com/elector-dev/elector/internal/outage"
	"github.com/elector-dev/elector/internal/rbac"
)

// fieldManager names elector in the Pods' managedFields.
const fieldManager = "elector"

// labeler marks the leader's Pod with KEY=VALUE, so that a Service can
// select the leader only. It needs list and patch on pods
// (rbac.PodLabelRules) and nothing else.
type labeler struct {
	pods       podLabeler
	namespace  string // own Pod's namespace
	self       string // own Pod name
	key, value string
	retry      time.Duration // between failed attempts
	unmarkIn   time.Duration // budget to remove the own label when leadership ends
	clock      clock.Clock
	log        *slog.Logger
	// outage logs an outage of the API server once when the label's
	// requests start failing and once when they succeed again; nil: the
	// labeler makes its own (see hold).
	outage *outage.Tracker
}

// podLabeler lists and patches Pods; *api implements it with plain JSON.
type podLabeler interface {
	PodNames(ctx context.Context, namespace, selector string) ([]string, error)
	PatchPod(ctx context.Context, namespace, name string, patch []byte) error
}

// deniedLogInterval rate-limits the log of a label patch that the API
// server keeps denying.
const deniedLogInterval = time.Minute

// claim makes this Pod the only one labeled: first it removes the label
// from every other Pod that carries it (a crashed leader never removed
// its own), then sets it on this Pod. In that order a Service never
// routes to two Pods at once; it routes to none for one request's time.
func (l *labeler) claim(ctx context.Context) error {
	sel := labels.Set{l.key: l.value}.AsSelector().String()
	names, err := l.pods.PodNames(ctx, l.namespace, sel)
	if err != nil {
		return fmt.Errorf("unable to list pods with %s: %w", sel, err)
	}
	for _, name := range names {
		if name == l.self {
			continue
		}
		if err := l.patch(ctx, name, nil); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("unable to remove label %s from pod %q: %w", l.key, name, err)
		}
		l.log.Info("Removed leader label from former leader", "pod", name, "label", sel)
	}
	if err := l.patch(ctx, l.self, &l.value); err != nil {
		return fmt.Errorf("unable to label own pod %q: %w", l.self, err)
	}
	return nil
}

// unmark removes the label from this Pod.
func (l *labeler) unmark(ctx context.Context) error {
	if err := l.patch(ctx, l.self, nil); err != nil {
		return fmt.Errorf("unable to remove label %s from own pod %q: %w", l.key, l.self, err)
	}
	return nil
}

// patch sets (value non-nil) or removes (nil) the label with a JSON merge
// patch, which needs no prior read.
func (l *labeler) patch(ctx context.Context, pod string, value *string) error {
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]*string{l.key: value}}})
	if err != nil {
		return err
	}
	return l.pods.PatchPod(ctx, l.namespace, pod, body)
}

// hold runs for one tenure: it claims the label, retrying failures, until
// ctx ends; then it removes the own label within unmarkIn, best effort.
// A 403 is retried too: the permission was checked at start, so a denial
// now is an API server restarting or a Role being replaced, and the leader
// keeps leading without its label meanwhile. The log names the missing
// permission and the Role that grants it, at most once a minute.
func (l *labeler) hold(ctx context.Context) {
	if l.outage == nil {
		l.outage = outage.New(l.log, l.clock)
	}
	var deniedLogged time.Time
	for ctx.Err() == nil {
		err := l.claim(ctx)
		l.outage.Observe(ctx, "move the leader label", err)
		if err == nil {
			l.log.Info("Labeled own pod as leader", "pod", l.self, "label", l.key+"="+l.value)
			break
		}
		if ctx.Err() != nil {
			break
		}
		if f, ok := rbac.ParseForbidden(err); ok {
			if now := l.clock.Now(); deniedLogged.IsZero() || now.Sub(deniedLogged) >= deniedLogInterval {
				deniedLogged = now
				l.log.Error("Permission denied; retrying", "error", err, "retryIn", l.retry.String(),
					"fix", rbac.Explain(l.namespace, rbac.SubjectFromUsername(f.User), rbac.PodLabelRules(), "elector-leader-label"))
			}
		} else if outage.Transient(err) {
			// Logged by l.outage when it starts and when it ends.
			l.log.Debug("Unable to move the leader label, retrying", "error", err, "retryIn", l.retry.String())
		} else {
			l.log.Error("Unable to move the leader label, retrying", "error", err, "retryIn", l.retry.String())
		}
		t := l.clock.NewTimer(l.retry)
		select {
		case <-ctx.Done():
		case <-t.C():
		}
		t.Stop()
	}
	<-ctx.Done()
	l.unmarkBestEffort(ctx)
}

func (l *labeler) unmarkBestEffort(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.unmarkIn)
	defer cancel()
	err := l.unmark(rctx)
	switch {
	case apierrors.IsNotFound(err):
		return // no Pod, no label
	case err != nil:
		l.log.Error("Unable to remove leader label; the next leader removes it", "error", err)
		return
	}
	l.log.Info("Removed leader label from own pod", "pod", l.self)
}
