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
	"fmt"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/elector-dev/elector"
)

// Event reasons.
const (
	reasonBecameLeader   = "BecameLeader"
	reasonStoppedLeading = "StoppedLeading"
)

const (
	// eventTimeout bounds the two requests (get Lease, create Event) of one Event.
	eventTimeout = 5 * time.Second
	// eventQueue is how many Events may wait; more are dropped and logged.
	eventQueue = 16
	// maxEventMessage and maxReportingInstance are the API server's limits.
	maxEventMessage      = 1024
	maxReportingInstance = 128
)

type eventReq struct{ reason, message string }

// recorder writes core/v1 Events about the Lease in the background, so
// that the election never waits for them. Failures are logged, never
// fatal. A nil *recorder records nothing.
//
// Each Event refers to the Lease by kind, apiVersion, namespace, name and
// UID, read from the API server for each Event (the Lease may have been
// re-created). The 0.5 image failed here with "selfLink was empty" because
// it built the reference from an object without TypeMeta.
type recorder struct {
	events    eventWriter
	leases    elector.LeaseClient
	namespace string
	lease     string
	identity  string
	clock     clock.PassiveClock
	log       *slog.Logger

	queue chan eventReq
	done  chan struct{}
}

// eventWriter creates Events; *api implements it with plain JSON.
type eventWriter interface {
	CreateEvent(ctx context.Context, ev *event) error
}

func newRecorder(events eventWriter, leases elector.LeaseClient, namespace, lease, identity string, clk clock.PassiveClock, log *slog.Logger) *recorder {
	r := &recorder{
		events:    events,
		leases:    leases,
		namespace: namespace,
		lease:     lease,
		identity:  identity,
		clock:     clk,
		log:       log,
		queue:     make(chan eventReq, eventQueue),
		done:      make(chan struct{}),
	}
	go r.loop()
	return r
}

// emit queues an Event; it never blocks.
func (r *recorder) emit(reason, message string) {
	if r == nil {
		return
	}
	select {
	case r.queue <- eventReq{reason, message}:
	default:
		r.log.Warn("Event queue full; dropping event", "reason", reason, "message", message)
	}
}

// close writes the queued Events, waiting until ctx ends at most.
func (r *recorder) close(ctx context.Context) {
	if r == nil {
		return
	}
	close(r.queue)
	select {
	case <-r.done:
	case <-ctx.Done():
		r.log.Warn("Events not written before shutdown")
	}
}

func (r *recorder) loop() {
	defer close(r.done)
	for req := range r.queue {
		ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
		if err := r.write(ctx, req); err != nil {
			r.log.Warn("Unable to record event", "reason", req.reason, "error", err)
		}
		cancel()
	}
}

func (r *recorder) write(ctx context.Context, req eventReq) error {
	l, err := r.leases.Get(ctx, r.lease, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("unable to read Lease for the event: %w", err)
	}
	now := metav1.NewTime(r.clock.Now())
	ev := &event{
		Metadata: metav1.ObjectMeta{
			// client-go's recorder names Events the same way.
			Name:      fmt.Sprintf("%s.%x", r.lease, now.UnixNano()),
			Namespace: r.namespace,
		},
		InvolvedObject: objectReference{
			Kind:            "Lease",
			APIVersion:      "coordination.k8s.io/v1",
			Namespace:       l.Namespace,
			Name:            l.Name,
			UID:             l.UID,
			ResourceVersion: l.ResourceVersion,
		},
		Reason:              req.reason,
		Message:             truncate(req.message, maxEventMessage),
		Type:                "Normal",
		Source:              eventSource{Component: "elector"},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: "elector",
		ReportingInstance:   truncate(r.identity, maxReportingInstance),
	}
	if err := r.events.CreateEvent(ctx, ev); err != nil {
		return fmt.Errorf("unable to create event: %w", err)
	}
	r.log.Debug("Recorded event", "reason", req.reason)
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
