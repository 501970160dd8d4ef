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

package monitoring

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedFilesAreCurrent: deploy/monitoring holds what this package
// renders, so the rule file and the PrometheusRule cannot drift apart.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join("..", "..", "deploy", "monitoring", name))
		if err != nil {
			t.Fatalf("unable to read deploy/monitoring/%s: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("deploy/monitoring/%s is not what tools/monitoring renders: run make monitoring", name)
		}
	}
}

// TestEveryAlertHasARunbook: each alert has a summary, a description
// naming a query to run next, and a section in docs/monitoring.md.
func TestEveryAlertHasARunbook(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "monitoring.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range Groups() {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if r.Annotations["summary"] == "" || !strings.Contains(r.Annotations["description"], "Next: `") {
				t.Errorf("%s: want a summary and a description with the query to run next", r.Alert)
			}
			if !bytes.Contains(doc, []byte("\n### "+r.Alert+"\n")) {
				t.Errorf("%s: docs/monitoring.md has no section ### %s", r.Alert, r.Alert)
			}
		}
	}
	fires, quiet := alertsTested()
	for _, g := range Groups() {
		for _, r := range g.Rules {
			if r.Alert != "" && (!fires[r.Alert] || !quiet[r.Alert]) {
				t.Errorf("%s: want a promtool case where it fires and one where it must not", r.Alert)
			}
		}
	}
	if n < 9 {
		t.Errorf("%d alerts, want at least 9", n)
	}
}

// TestEveryPanelHasAQuery: the dashboard's panels each query Prometheus.
func TestEveryPanelHasAQuery(t *testing.T) {
	d := NewDashboard()
	if len(d.Panels) < 6 {
		t.Fatalf("%d panels, want at least 6", len(d.Panels))
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
}
