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
	"encoding/json"
	"fmt"
)

// Target is one query of a panel.
type Target struct {
	RefID        string     `json:"refId"`
	Expr         string     `json:"expr"`
	LegendFormat string     `json:"legendFormat"`
	Datasource   datasource `json:"datasource"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Panel is one Grafana panel.
type Panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	GridPos     gridPos        `json:"gridPos"`
	Datasource  datasource     `json:"datasource"`
	Targets     []Target       `json:"targets"`
	FieldConfig map[string]any `json:"fieldConfig"`
	Options     map[string]any `json:"options,omitempty"`
}

// Dashboard is the part of Grafana's dashboard model elector uses.
type Dashboard struct {
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	Tags          []string       `json:"tags"`
	Timezone      string         `json:"timezone"`
	Refresh       string         `json:"refresh"`
	SchemaVersion int            `json:"schemaVersion"`
	Time          map[string]any `json:"time"`
	Templating    map[string]any `json:"templating"`
	Panels        []Panel        `json:"panels"`
}

var ds = datasource{Type: "prometheus", UID: "${datasource}"}

type panelSpec struct {
	kind, title, description, unit string
	queries                        [][2]string // expr, legend
}

// panels are the dashboard's panels, two per row.
var panels = []panelSpec{
	{
		"state-timeline", "Leader per election", "Which replica leads each election over time (elector_is_leader == 1).", "",
		[][2]string{{`max by (lease_namespace, lease, instance) (elector_is_leader{lease_namespace=~"$lease_namespace"}) == 1`, "{{lease_namespace}}/{{lease}} {{instance}}"}},
	},
	{
		"timeseries", "Leader transitions", "Changes of holder seen by the replicas (max over replicas) and unplanned ones: takeovers of an expired lease.", "short",
		[][2]string{
			{`max by (lease_namespace, lease) (increase(elector_leader_changes_total{lease_namespace=~"$lease_namespace"}[5m]))`, "{{lease_namespace}}/{{lease}} changes"},
			{`sum by (lease_namespace, lease) (increase(elector_expired_takeovers_total{lease_namespace=~"$lease_namespace"}[5m]))`, "{{lease_namespace}}/{{lease}} unplanned"},
		},
	},
	{
		"timeseries", "Renew latency", "Latency of the leaders' renewal requests, p50 and p99 over 5 minutes.", "s",
		[][2]string{
			{`histogram_quantile(0.5, sum by (lease_namespace, lease, le) (rate(elector_renew_duration_seconds_bucket{lease_namespace=~"$lease_namespace"}[5m])))`, "{{lease_namespace}}/{{lease}} p50"},
			{`histogram_quantile(0.99, sum by (lease_namespace, lease, le) (rate(elector_renew_duration_seconds_bucket{lease_namespace=~"$lease_namespace"}[5m])))`, "{{lease_namespace}}/{{lease}} p99"},
		},
	},
	{
		"timeseries", "API requests by verb", "Requests of the sidecars to the Kubernetes API server per second, by verb and status code.", "reqps",
		[][2]string{{`sum by (verb, code) (rate(elector_api_requests_total[5m]))`, "{{verb}} {{code}}"}},
	},
	{
		"timeseries", "Handoffs", "Planned handoffs: role=from by the replica that handed the Lease on (or released it on SIGTERM), role=to by the replica that took a Lease handed to it; pending requests.", "short",
		[][2]string{
			{`sum by (lease_namespace, lease, role) (increase(elector_handoffs_total{lease_namespace=~"$lease_namespace"}[5m]))`, "{{lease_namespace}}/{{lease}} {{role}}"},
			{`max by (lease_namespace, lease) (elector_handoff_pending{lease_namespace=~"$lease_namespace"})`, "{{lease_namespace}}/{{lease}} pending"},
		},
	},
	{
		"timeseries", "Shard ownership", "Shards whose function runs in each replica of a sharded group, and the group's shard count.", "short",
		[][2]string{
			{`sum by (lease_namespace, group, instance) (elector_shards_owned{lease_namespace=~"$lease_namespace"})`, "{{lease_namespace}}/{{group}} {{instance}}"},
			{`max by (lease_namespace, group) (elector_shards{lease_namespace=~"$lease_namespace"})`, "{{lease_namespace}}/{{group}} shards"},
		},
	},
	{
		"timeseries", "Leader known, from every replica", "Replicas that know an unexpired holder (elector_leader_known), per election: 0 means no leader.", "short",
		[][2]string{{`sum by (lease_namespace, lease) (elector_leader_known{lease_namespace=~"$lease_namespace"})`, "{{lease_namespace}}/{{lease}}"}},
	},
	{
		"timeseries", "Renewal failures and denials", "Failed renewals per second, and replicas denied by the API server (403/401).", "short",
		[][2]string{
			{`sum by (lease_namespace, lease) (rate(elector_renew_failures_total{lease_namespace=~"$lease_namespace"}[5m]))`, "{{lease_namespace}}/{{lease}} failures/s"},
			{`sum by (lease_namespace, lease) (elector_permission_denied{lease_namespace=~"$lease_namespace"})`, "{{lease_namespace}}/{{lease}} denied"},
		},
	},
}

// NewDashboard builds the Grafana dashboard.
func NewDashboard() Dashboard {
	d := Dashboard{
		UID: "elector", Title: "elector: leader election", Tags: []string{"elector", "leader-election"},
		Timezone: "browser", Refresh: "30s", SchemaVersion: 39,
		Time: map[string]any{"from": "now-1h", "to": "now"},
		Templating: map[string]any{"list": []any{
			map[string]any{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
			map[string]any{
				"name": "lease_namespace", "type": "query", "label": "Lease namespace", "datasource": ds,
				"query": "label_values(elector_is_leader, lease_namespace)", "refresh": 2,
				"includeAll": true, "multi": true, "allValue": ".*",
				"current": map[string]any{"text": "All", "value": "$__all"},
			},
		}},
	}
	for i, p := range panels {
		var targets []Target
		for j, q := range p.queries {
			targets = append(targets, Target{RefID: string(rune('A' + j)), Expr: q[0], LegendFormat: q[1], Datasource: ds})
		}
		fc := map[string]any{"defaults": map[string]any{"unit": p.unit}, "overrides": []any{}}
		if p.unit == "" {
			fc = map[string]any{"defaults": map[string]any{}, "overrides": []any{}}
		}
		d.Panels = append(d.Panels, Panel{
			ID: i + 1, Type: p.kind, Title: p.title, Description: p.description,
			GridPos: gridPos{H: 8, W: 12, X: 12 * (i % 2), Y: 8 * (i / 2)}, Datasource: ds,
			Targets: targets, FieldConfig: fc,
		})
	}
	return d
}

// DashboardJSON renders the dashboard as Grafana imports it.
func DashboardJSON() ([]byte, error) {
	b, err := json.MarshalIndent(NewDashboard(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("unable to render the dashboard: %w", err)
	}
	return append(b, '\n'), nil
}
