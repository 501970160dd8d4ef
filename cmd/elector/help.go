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
	"fmt"
	"io"
)

// helpMetrics are the metrics /metrics serves, as `elector -h` lists
// them, besides the Go runtime's go_* and process_* collectors.
// TestHelpListsServedMetrics (and e2e TestHelpListsEveryServedMetric)
// scrape /metrics and fail for every served metric missing here.
var helpMetrics = []struct{ name, help string }{
	// One election (package elector), labels lease_namespace and lease
	// (not namespace, which Prometheus Operator sets to the Pod's); in
	// the sharded mode also for the group's coordinator Lease.
	{"elector_is_leader", "1 while this replica leads and its work runs"},
	{"elector_leader_changes_total", "changes of the Lease holder seen"},
	{"elector_renew_duration_seconds", "latency of renewal requests (histogram)"},
	{"elector_renew_failures_total", "renewal requests that failed"},
	{"elector_last_renew_timestamp_seconds", "Unix time of the last successful renewal"},
	{"elector_stop_overruns_total", "tenures whose work had not stopped by the renew deadline"},
	{"elector_permission_denied", "1 while the API server denies requests (403/401)"},
	{"elector_handoffs_total", `planned handoffs, role="from" or "to"`},
	{"elector_handoff_pending", "1 while a handoff request is written on the Lease"},
	{"elector_expired_takeovers_total", "leader changes that were neither a release nor a planned handoff"},
	// From every replica, leader or not.
	{"elector_leader_known", "1 while the Lease names a holder whose lease has not expired"},
	{"elector_lease_expiry_timestamp_seconds", "Unix time at which the observed lease expires"},
	// The standard series of client-go and controller-runtime, label name.
	{"leader_election_master_status", "1 while this replica leads, 0 on standby"},
	// The sidecar itself.
	{"elector_api_requests_total", "API requests by verb and HTTP code"},
	{"elector_build_info", "1, labelled version, revision, goversion"},
	// The sharded mode (package shard), labels lease_namespace and group.
	{"elector_shards", "with --shards: the group's number of shards"},
	{"elector_shards_owned", "with --shards: shards whose command runs here"},
	{"elector_shard_moves_total", "with --shards: assignment changes written here, by kind"},
	{"elector_shard_table_writes_total", "with --shards: writes of the assignment Lease, by result"},
	{"elector_shard_member_fences_total", "with --shards: expired member Leases fenced here"},
	// The HTTP server (limits.go).
	{"elector_http_refused_total", `requests refused at a limit, reason="watchers" or "connections"`},
}

// printMetrics writes the /metrics part of the usage.
func printMetrics(w io.Writer) {
	fmt.Fprintln(w, "  /metrics   Prometheus metrics:")
	for _, m := range helpMetrics {
		fmt.Fprintf(w, "               %s  %s\n", m.name, m.help)
	}
	fmt.Fprintln(w, "             and the Go runtime's go_* and process_* metrics")
	fmt.Fprintln(w, "             Monitoring kit (alerts, recording rules, Grafana dashboard,")
	fmt.Fprintln(w, "             PodMonitor): deploy/monitoring/, docs/monitoring.md")
}
