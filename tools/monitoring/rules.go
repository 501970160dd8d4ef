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

// Package monitoring is the one source of elector's monitoring kit: the
// Prometheus recording and alerting rules, written both as a plain rule
// file and as a Prometheus Operator PrometheusRule, and the Grafana
// dashboard. cmd/gen-monitoring writes them into deploy/monitoring; a
// test fails when the files there differ from what this package renders.
package monitoring

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Rule is a recording rule (Record set) or an alerting rule (Alert set).
type Rule struct {
	Record      string            `yaml:"record,omitempty"`
	Alert       string            `yaml:"alert,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// Group is a rule group.
type Group struct {
	Name  string `yaml:"name"`
	Rules []Rule `yaml:"rules"`
}

// notMember leaves out the member Leases of sharded groups
// (shard.MemberName: GROUP-m-<16 hex digits>): each has one candidate,
// and its holder leaving is a scale-down, not an election without leader.
const notMember = `lease!~".+-m-[0-9a-f]{16}"`

// RunbookURL is where each alert's runbook section lives.
const RunbookURL = "https://github.com/elector-dev/elector/blob/main/docs/monitoring.md#"

func alert(name, severity, forDur, expr, summary, description string) Rule {
	return Rule{
		Alert: name, Expr: expr, For: forDur,
		Labels: map[string]string{"severity": severity},
		Annotations: map[string]string{
			"summary":     summary,
			"description": description,
			"runbook_url": RunbookURL + anchor(name),
		},
	}
}

// anchor is the GitHub heading anchor of the runbook section "### NAME".
func anchor(name string) string { return strings.ToLower(name) }

// Groups are the rules, recording first.
func Groups() []Group {
	return []Group{{
		Name: "elector.rules",
		Rules: []Rule{
			{Record: "elector:leaders:sum", Expr: `sum by (lease_namespace, lease) (elector_is_leader)`},
			{Record: "elector:leader_known:max", Expr: `max by (lease_namespace, lease) (elector_leader_known)`},
			{Record: "elector:renew_duration_seconds:p99_rate5m", Expr: `histogram_quantile(0.99, sum by (lease_namespace, lease, le) (rate(elector_renew_duration_seconds_bucket[5m])))`},
			{Record: "elector:renew_failures:ratio_rate5m", Expr: `sum by (lease_namespace, lease) (rate(elector_renew_failures_total[5m])) / sum by (lease_namespace, lease) (rate(elector_renew_duration_seconds_count[5m]))`},
			{Record: "elector:api_requests:rate5m", Expr: `sum by (job, verb, code) (rate(elector_api_requests_total[5m]))`},
			{Record: "elector:shards_owned:sum", Expr: `sum by (lease_namespace, group) (elector_shards_owned)`},
		},
	}, {
		Name: "elector.alerts",
		Rules: []Rule{
			alert("ElectorNoLeader", "critical", "30s",
				// Elections with a replica whose target still exists (up
				// or down) in the last hour, minus those where a live
				// replica knows an unexpired holder. A replica's
				// elector_leader_known turns 0 a lease after the last
				// renewal it saw; a target that cannot be scraped (all
				// replicas paused, crashed, node lost) has no current
				// sample at all, hence the hour's replicas.
				`count by (lease_namespace, lease) (last_over_time(elector_leader_known{`+notMember+`}[1h]) and on (job, instance) up)
unless on (lease_namespace, lease)
max by (lease_namespace, lease) (elector_leader_known == 1)`,
				"No leader for election {{ $labels.lease_namespace }}/{{ $labels.lease }}.",
				"No replica of Lease {{ $labels.lease_namespace }}/{{ $labels.lease }} that can be scraped knows a leader whose lease has not expired, for more than 30 seconds on top of the lease itself (or none of its replicas can be scraped). Leader work is not being done. Next: `elector_leader_known{lease_namespace=\"{{ $labels.lease_namespace }}\",lease=\"{{ $labels.lease }}\"}` and `up` of its targets; `kubectl elector status {{ $labels.lease }} -n {{ $labels.lease_namespace }}`."),
			alert("ElectorMultipleLeaders", "critical", "",
				// Targets are scraped at different times: during a handoff
				// the old leader's last sample may still say 1 while the
				// new one's already does, for up to one scrape interval.
				// min_over_time over 1m (more than two scrape intervals)
				// counts a replica only if every sample of the last minute
				// said it leads, which no handoff produces.
				`sum by (lease_namespace, lease) (min_over_time(elector_is_leader[1m])) > 1`,
				"More than one replica claims to lead {{ $labels.lease_namespace }}/{{ $labels.lease }}.",
				"Several replicas of Lease {{ $labels.lease_namespace }}/{{ $labels.lease }} reported elector_is_leader=1 in every scrape of the last minute. One Lease admits one holder; a second claimant means a leader that did not stop (a bug, or a library user whose leader function ignores its context) or two elections configured with the same name and namespace in different clusters. Next: `elector_is_leader{lease_namespace=\"{{ $labels.lease_namespace }}\",lease=\"{{ $labels.lease }}\"} == 1` (which instances), then `kubectl elector status {{ $labels.lease }} -n {{ $labels.lease_namespace }}` (who holds the Lease)."),
			alert("ElectorLeadershipFlapping", "warning", "",
				`sum by (lease_namespace, lease) (increase(elector_expired_takeovers_total{`+notMember+`}[1h])) > 3`,
				"Leadership of {{ $labels.lease_namespace }}/{{ $labels.lease }} changes without handoff.",
				"More than 3 times in the last hour a replica of Lease {{ $labels.lease_namespace }}/{{ $labels.lease }} took it over after its holder stopped renewing (crash, pause, partition, overload); releases and planned handoffs do not count. Next: `increase(elector_expired_takeovers_total{lease_namespace=\"{{ $labels.lease_namespace }}\",lease=\"{{ $labels.lease }}\"}[1h])` by instance, `elector:renew_failures:ratio_rate5m`, and the restarts of the Pods (`kubectl get pods`)."),
			alert("ElectorRenewalsFailing", "warning", "5m",
				`elector:renew_failures:ratio_rate5m > 0.1`,
				"Lease renewals of {{ $labels.lease_namespace }}/{{ $labels.lease }} fail.",
				"More than 10% of the renewal requests for Lease {{ $labels.lease_namespace }}/{{ $labels.lease }} failed over 5 minutes, for 5 minutes. A leader that cannot renew within its renew deadline steps down. Next: `rate(elector_renew_failures_total{lease_namespace=\"{{ $labels.lease_namespace }}\",lease=\"{{ $labels.lease }}\"}[5m])` by instance, `elector:renew_duration_seconds:p99_rate5m`, `elector_api_requests_total{code!~\"2..\"}`, and the log (msg=\"API server unreachable; retrying\" when the API server does not answer, else msg=\"Unable to renew lease, retrying\")."),
			alert("ElectorPermissionDenied", "critical", "30s",
				`max by (lease_namespace, lease) (elector_permission_denied) == 1`,
				"The API server denies the requests of {{ $labels.lease_namespace }}/{{ $labels.lease }}.",
				"Replicas of Lease {{ $labels.lease_namespace }}/{{ $labels.lease }} get 403 or 401 and keep retrying; no replica can take or renew the Lease. Next: `elector_permission_denied == 1` (which instances), then `curl POD:PORT/leader`: its \"fix\" names the missing verb and the Role to apply; `kubectl auth can-i update leases -n {{ $labels.lease_namespace }} --as=system:serviceaccount:NS:SA`."),
			alert("ElectorStopOverrun", "critical", "",
				`sum by (lease_namespace, lease) (increase(elector_stop_overruns_total[10m])) > 0`,
				"Leader work of {{ $labels.lease_namespace }}/{{ $labels.lease }} overran its stop deadline.",
				"A leader of Lease {{ $labels.lease_namespace }}/{{ $labels.lease }} did not stop its work before the renew deadline: mutual exclusion could not be promised (the sidecar exits 7, /healthz fails). Next: `increase(elector_stop_overruns_total{lease_namespace=\"{{ $labels.lease_namespace }}\",lease=\"{{ $labels.lease }}\"}[10m])` by instance, the Pod's last exit code (7), and why the work ignored its stop (exec mode: --grace)."),
			alert("ElectorHandoffNotCompleted", "warning", "1m",
				`max by (lease_namespace, lease) (elector_handoff_pending) == 1`,
				"A planned handoff of {{ $labels.lease_namespace }}/{{ $labels.lease }} is not completed.",
				"A handoff was requested of the holder of Lease {{ $labels.lease_namespace }}/{{ $labels.lease }} more than a minute ago and is still pending: the holder is not handing over (busy stopping, or the target is not a live candidate). Next: `kubectl elector status {{ $labels.lease }} -n {{ $labels.lease_namespace }}` (the request and its target), `elector_handoffs_total` by role and instance."),
			alert("ElectorShardsUnowned", "critical", "1m",
				`max by (lease_namespace, group) (elector_shards) > on (lease_namespace, group) elector:shards_owned:sum`,
				"Shards of group {{ $labels.lease_namespace }}/{{ $labels.group }} have no running owner.",
				"Fewer shards of group {{ $labels.lease_namespace }}/{{ $labels.group }} run than it has, for a minute: some shards' work is not being done. Next: `elector_shards_owned{lease_namespace=\"{{ $labels.lease_namespace }}\",group=\"{{ $labels.group }}\"}` by instance and `kubectl elector shards {{ $labels.group }} -n {{ $labels.lease_namespace }}` (every shard's owner and pending handoff)."),
			alert("ElectorShardsUnbalanced", "warning", "5m",
				`max by (lease_namespace, group) (elector_shards_owned) - min by (lease_namespace, group) (elector_shards_owned) > 1`,
				"Shards of group {{ $labels.lease_namespace }}/{{ $labels.group }} are unbalanced.",
				"Replicas of group {{ $labels.lease_namespace }}/{{ $labels.group }} own shard counts differing by more than one for 5 minutes; the coordinator rebalances within seconds normally. Next: `elector_shards_owned{lease_namespace=\"{{ $labels.lease_namespace }}\",group=\"{{ $labels.group }}\"}` by instance, `kubectl elector shards {{ $labels.group }} -n {{ $labels.lease_namespace }}`, and the coordinator's log."),
		},
	}}
}

// RuleFile renders the plain Prometheus rule file.
func RuleFile() ([]byte, error) {
	return render(header("plain Prometheus rule file (rule_files:)"), struct {
		Groups []Group `yaml:"groups"`
	}{Groups()})
}

// PrometheusRule renders the rules as a Prometheus Operator
// PrometheusRule.
func PrometheusRule() ([]byte, error) {
	type meta struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	}
	type spec struct {
		Groups []Group `yaml:"groups"`
	}
	return render(header("Prometheus Operator PrometheusRule"), struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   meta   `yaml:"metadata"`
		Spec       spec   `yaml:"spec"`
	}{"monitoring.coreos.com/v1", "PrometheusRule", meta{"elector", map[string]string{"app.kubernetes.io/name": "elector"}}, spec{Groups()}})
}

func header(what string) string {
	return fmt.Sprintf("# elector's recording and alerting rules, as a %s.\n# Generated by tools/monitoring (go run ./cmd/gen-monitoring); do not edit.\n# Runbooks: docs/monitoring.md\n", what)
}

func render(head string, v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(head)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("unable to render YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("unable to render YAML: %w", err)
	}
	return b.Bytes(), nil
}
