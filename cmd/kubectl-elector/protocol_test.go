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
	"encoding/json"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/elector-dev/elector"
)

// The plugin keeps its own copy of the handoff protocol (protocol.go) so
// that its binary does not carry the library's dependencies; this test
// keeps the copy in step with the library.
func TestProtocolMatchesLibrary(t *testing.T) {
	pairs := [][2]string{
		{annotationHandoffTo, elector.AnnotationHandoffTo},
		{annotationHandoffRequestedAt, elector.AnnotationHandoffRequestedAt},
		{annotationHolder, elector.AnnotationHolder},
		{reasonBecameLeader, elector.ReasonBecameLeader},
		{reasonStoppedLeading, elector.ReasonStoppedLeading},
		{reasonHandedOff, elector.ReasonHandedOff},
	}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("plugin has %q, library has %q", p[0], p[1])
		}
	}
	at := time.Date(2026, 12, 7, 10, 0, 0, 123456000, time.UTC)
	lib := elector.HolderMarker{Identity: "pod-2", Token: 8, Version: "v0.2.0", Handoff: true, HandedBy: "pod-1", RenewTime: at}
	b, err := json.Marshal(lib)
	if err != nil {
		t.Fatal(err)
	}
	var m marker
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := marker{Identity: "pod-2", Token: 8, Version: "v0.2.0", Handoff: true, HandedBy: "pod-1", RenewTime: at}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("library marker %s read as %+v, want %+v", b, m, want)
	}
	// And the library's reading of a marker agrees with the plugin's.
	l := newLease("team-a", "l", "pod-2", 8, withMarker("pod-2", 8, true, "pod-1"))
	lm, current := elector.MarkerOf(l)
	pm, _, pcurrent := markerOf(l)
	if current != pcurrent || !current || lm.Identity != pm.Identity || lm.Token != pm.Token || lm.HandedBy != pm.HandedBy {
		t.Errorf("library reads %+v (current %t), plugin %+v (current %t)", lm, current, pm, pcurrent)
	}
	// A renewal by someone else (client-go keeps the annotations) makes
	// the marker stale for both.
	renewed := metav1.NewMicroTime(l.Spec.RenewTime.Add(time.Second))
	l.Spec.RenewTime = &renewed
	_, current = elector.MarkerOf(l)
	_, _, pcurrent = markerOf(l)
	if current || pcurrent {
		t.Errorf("after another writer's renewal: library current %t, plugin current %t; want both stale", current, pcurrent)
	}
}
