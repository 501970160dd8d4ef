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
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestRecorderWritesEventsOnTheLease(t *testing.T) {
	cs := fake.NewClientset(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
		Name: "my-app", Namespace: "team-a", UID: "0a1b2c", ResourceVersion: "42",
	}})
	fc := clocktesting.NewFakeClock(t0)
	r := newRecorder(typedCore{cs.CoreV1()}, cs.CoordinationV1().Leases("team-a"), "team-a", "my-app", "pod-a", fc, slog.New(slog.DiscardHandler))
	r.emit(reasonBecameLeader, "pod-a became leader (token 3)")
	r.close(context.Background())

	evs, err := cs.CoreV1().Events("team-a").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs.Items) != 1 {
		t.Fatalf("%d events, want 1", len(evs.Items))
	}
	ev := evs.Items[0]
	ref := ev.InvolvedObject
	if ref.Kind != "Lease" || ref.APIVersion != "coordination.k8s.io/v1" || ref.Name != "my-app" || ref.Namespace != "team-a" || ref.UID != "0a1b2c" {
		t.Errorf("involvedObject = %+v", ref)
	}
	if ev.Reason != reasonBecameLeader || ev.Message != "pod-a became leader (token 3)" || ev.Type != "Normal" ||
		ev.Count != 1 || ev.FirstTimestamp.Unix() != t0.Unix() ||
		ev.Source.Component != "elector" || ev.ReportingInstance != "pod-a" || ev.Namespace != "team-a" {
		t.Errorf("event = %+v", ev)
	}
	if !strings.HasPrefix(ev.Name, "my-app.") {
		t.Errorf("event name = %q", ev.Name)
	}
}

// A failed Event is logged, never fatal.
func TestRecorderFailureIsLogged(t *testing.T) {
	cs := fake.NewClientset() // no Lease
	var logs bytes.Buffer
	r := newRecorder(typedCore{cs.CoreV1()}, cs.CoordinationV1().Leases("team-a"), "team-a", "my-app", "pod-a", clocktesting.NewFakeClock(t0), slog.New(slog.NewTextHandler(&logs, nil)))
	r.emit(reasonStoppedLeading, "bye")
	r.close(context.Background())
	if !strings.Contains(logs.String(), `msg="Unable to record event" reason=StoppedLeading`) {
		t.Errorf("logs = %s", logs.String())
	}
	var nilRec *recorder
	nilRec.emit("X", "y") // events off
	nilRec.close(context.Background())
}
